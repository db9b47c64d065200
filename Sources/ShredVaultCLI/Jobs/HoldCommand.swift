import ArgumentParser

struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Place, release and list legal holds (place and release need the restore key).",
        discussion: """
            A legal hold suspends a user's expiry and blocks deletion requests while a case needs the data. \
            Placing it reseals each bundle's data key from its day key to the case's hold key (the bundle file \
            is never rewritten); sweep never destroys a hold key while the hold lasts. Releasing the last hold \
            reseals the bundles to the day key of max(original expiry day, release day) and runs the deletion \
            requests the hold blocked.

            Example:
              export SHREDVAULT_MASTER_KEY_FILE=/root/shredvault-restore.key
              shredvault hold place u0100037 --case HR-2026-14 \\
                  --reason "wrongful dismissal claim"
              shredvault restore u0100037 --case HR-2026-14 --to /secure/u0100037
              shredvault hold release u0100037 --case HR-2026-14
            """,
        subcommands: [HoldPlace.self, HoldRelease.self, HoldList.self]
    )
}
