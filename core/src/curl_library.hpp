// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// libcurl, opened the first time a remote cache is used instead of linked. Linked, it and
// what it pulls in (TLS, Kerberos, LDAP, SSH, IDN...) cost every command about 6 ms of
// dynamic loading — an eighth of a warm pass — while only passes with remote_cache set
// ever make a request.

#include "kmodsync/expected.hpp"

#include <curl/curl.h>

namespace kmodsync {

struct CurlLibrary
{
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
};

// The loaded and initialised library, shared by all threads; an error naming the library
// and how to install it when it cannot be opened.
Expected<const CurlLibrary*> curl_library();

} // namespace kmodsync
