#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these typed wrappers are the
 * only way VaultS3 reaches them (one per argument type VaultS3 passes). */

static inline CURLcode shredvault_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode shredvault_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

/* CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION and CURLOPT_READFUNCTION share this signature. */
typedef size_t (*shredvault_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode shredvault_curl_setopt_callback(CURL *handle, CURLoption option,
                                                       shredvault_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode shredvault_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode shredvault_curl_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/* CURLOPT_SEEKFUNCTION: lets libcurl rewind an upload's body when it re-sends a request by itself (a reused
 * connection that died before the answer); without it that retry fails with CURLE_SEND_FAIL_REWIND. */
typedef int (*shredvault_curl_seek_callback)(void *userdata, curl_off_t offset, int origin);

static inline CURLcode shredvault_curl_setopt_seek(CURL *handle, shredvault_curl_seek_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, callback);
}
