import ShredVault
print("shredvault")
