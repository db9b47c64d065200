/* The PKCS#11 v2.40 interface as p11-kit ships it (Debian: libp11-kit-dev, pkg-config p11-kit-1),
   in its default CRYPTOKI_COMPAT form: the standard's type and member names (CK_GCM_PARAMS.pIv, ...).
   Only the header is used: a token module is loaded at run time with dlopen and C_GetFunctionList
   (VaultHSM's PKCS11Module), never linked. */
#include <p11-kit/pkcs11.h>
