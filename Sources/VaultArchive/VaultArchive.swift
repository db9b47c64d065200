import CArchive
import CZstd
import CZlib
