#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>

/* libcurl is loaded when the first S3 request is made (dlopen of libcurl.so.4), not when the process starts: every
 * other command then never maps libcurl and the ~25 libraries it pulls in (TLS, Kerberos, LDAP, SSH, ...), about
 * 4 MiB of resident memory and part of each process's start (issue 15). Only CurlConnection+curl.swift calls these
 * functions, and it calls shredvault_curl_load() once (from a Swift static, so once per process) before any other:
 * the table below is then complete and never changes. */

struct shredvault_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *handle);
    void (*easy_reset)(CURL *handle);
    CURLcode (*easy_perform)(CURL *handle);
    const char *(*easy_strerror)(CURLcode code);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *string);
    void (*slist_free_all)(struct curl_slist *list);
};

static inline struct shredvault_curl_api *shredvault_curl_table(void) {
    static struct shredvault_curl_api api;
    return &api;
}

/* Loads libcurl and fills the table. Returns NULL on success, else a message naming what failed (a static buffer). */
static inline const char *shredvault_curl_load(void) {
    static char message[512];
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        snprintf(message, sizeof message, "cannot load libcurl (libcurl.so.4; Debian package libcurl4): %s", why ? why : "dlopen failed");
        return message;
    }
    struct shredvault_curl_api *api = shredvault_curl_table();
#define SHREDVAULT_CURL_SYMBOL(field, name) \
    do { \
        *(void **)(&api->field) = dlsym(lib, name); \
        if (api->field == NULL) { \
            snprintf(message, sizeof message, "libcurl.so.4 lacks %s", name); \
            return message; \
        } \
    } while (0)
    SHREDVAULT_CURL_SYMBOL(global_init, "curl_global_init");
    SHREDVAULT_CURL_SYMBOL(easy_init, "curl_easy_init");
    SHREDVAULT_CURL_SYMBOL(easy_cleanup, "curl_easy_cleanup");
    SHREDVAULT_CURL_SYMBOL(easy_reset, "curl_easy_reset");
    SHREDVAULT_CURL_SYMBOL(easy_perform, "curl_easy_perform");
    SHREDVAULT_CURL_SYMBOL(easy_strerror, "curl_easy_strerror");
    SHREDVAULT_CURL_SYMBOL(easy_setopt, "curl_easy_setopt");
    SHREDVAULT_CURL_SYMBOL(easy_getinfo, "curl_easy_getinfo");
    SHREDVAULT_CURL_SYMBOL(slist_append, "curl_slist_append");
    SHREDVAULT_CURL_SYMBOL(slist_free_all, "curl_slist_free_all");
#undef SHREDVAULT_CURL_SYMBOL
    return NULL;
}

static inline CURLcode shredvault_curl_global_init(long flags) { return shredvault_curl_table()->global_init(flags); }
static inline CURL *shredvault_curl_easy_init(void) { return shredvault_curl_table()->easy_init(); }
static inline void shredvault_curl_easy_cleanup(CURL *handle) { shredvault_curl_table()->easy_cleanup(handle); }
static inline void shredvault_curl_easy_reset(CURL *handle) { shredvault_curl_table()->easy_reset(handle); }
static inline CURLcode shredvault_curl_easy_perform(CURL *handle) { return shredvault_curl_table()->easy_perform(handle); }
static inline const char *shredvault_curl_easy_strerror(CURLcode code) { return shredvault_curl_table()->easy_strerror(code); }
static inline struct curl_slist *shredvault_curl_slist_append(struct curl_slist *list, const char *string) {
    return shredvault_curl_table()->slist_append(list, string);
}
static inline void shredvault_curl_slist_free_all(struct curl_slist *list) { shredvault_curl_table()->slist_free_all(list); }

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these typed wrappers are the
 * only way VaultS3 reaches them (one per argument type VaultS3 passes). */

static inline CURLcode shredvault_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return shredvault_curl_table()->easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return shredvault_curl_table()->easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return shredvault_curl_table()->easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return shredvault_curl_table()->easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return shredvault_curl_table()->easy_setopt(handle, option, value);
}

/* CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION and CURLOPT_READFUNCTION share this signature. */
typedef size_t (*shredvault_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode shredvault_curl_setopt_callback(CURL *handle, CURLoption option,
                                                       shredvault_curl_data_callback callback) {
    return shredvault_curl_table()->easy_setopt(handle, option, callback);
}

static inline CURLcode shredvault_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return shredvault_curl_table()->easy_getinfo(handle, info, value);
}

static inline CURLcode shredvault_curl_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return shredvault_curl_table()->easy_getinfo(handle, info, value);
}

/* CURLOPT_SEEKFUNCTION: lets libcurl rewind an upload's body when it re-sends a request by itself (a reused
 * connection that died before the answer); without it that retry fails with CURLE_SEND_FAIL_REWIND. */
typedef int (*shredvault_curl_seek_callback)(void *userdata, curl_off_t offset, int origin);

static inline CURLcode shredvault_curl_setopt_seek(CURL *handle, shredvault_curl_seek_callback callback) {
    return shredvault_curl_table()->easy_setopt(handle, CURLOPT_SEEKFUNCTION, callback);
}
