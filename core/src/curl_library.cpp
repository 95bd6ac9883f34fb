// SPDX-License-Identifier: GPL-2.0-or-later
#include "curl_library.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace kmodsync {

namespace {

// The OpenSSL build first, then Debian's GnuTLS one; both keep libcurl's ABI 4.
constexpr const char* k_sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};

template <typename Function>
bool resolve(void* library, const char* symbol, Function& function)
{
  function = reinterpret_cast<Function>(dlsym(library, symbol));
  return function != nullptr;
}

Expected<CurlLibrary> load_curl()
{
  void* library = nullptr;
  std::string tried;
  for (const char* soname : k_sonames) {
    library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (library) {
      break;
    }
    const char* why = dlerror();
    tried += fmt::format("{}{}", tried.empty() ? "" : "; ", why ? why : soname);
  }
  if (!library) {
    return error("libcurl cannot be loaded ({}); install libcurl (Debian: libcurl4, Fedora: libcurl, Arch: curl) "
                 "to use remote_cache",
                 tried);
  }
  CurlLibrary curl;
  decltype(&curl_global_init) global_init = nullptr;
  if (!resolve(library, "curl_global_init", global_init) || !resolve(library, "curl_easy_init", curl.easy_init)
      || !resolve(library, "curl_easy_cleanup", curl.easy_cleanup)
      || !resolve(library, "curl_easy_setopt", curl.easy_setopt)
      || !resolve(library, "curl_easy_perform", curl.easy_perform)
      || !resolve(library, "curl_easy_getinfo", curl.easy_getinfo)
      || !resolve(library, "curl_easy_strerror", curl.easy_strerror)) {
    const char* why = dlerror();
    dlclose(library);
    return error("libcurl lacks a function kmodsync uses: {}", why ? why : "unknown symbol");
  }
  // Not thread-safe in older libcurl, hence once, before any handle exists. The library
  // stays loaded for the life of the process.
  if (const CURLcode code = global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
    return error("libcurl cannot be initialised: {}", curl.easy_strerror(code));
  }
  return curl;
}

} // namespace

Expected<const CurlLibrary*> curl_library()
{
  static std::once_flag once;
  static Expected<CurlLibrary> loaded = error("libcurl not loaded");
  std::call_once(once, [] { loaded = load_curl(); });
  if (!loaded) {
    return std::unexpected(loaded.error());
  }
  return &*loaded;
}

} // namespace kmodsync
