// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/remote_cache.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

namespace kmodsync {

namespace {

// Objects are build results: a few modules and a log. Anything far bigger is not one.
constexpr std::size_t k_max_object_bytes = 512u << 20;

void global_init()
{
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t append_body(char* data, size_t size, size_t count, void* user)
{
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * count;
  if (body->size() + bytes > k_max_object_bytes) {
    return 0; // aborts the transfer
  }
  body->append(data, bytes);
  return bytes;
}

struct Upload
{
  const std::string* object;
  std::size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t count, void* user)
{
  auto* upload = static_cast<Upload*>(user);
  const size_t bytes = std::min(size * count, upload->object->size() - upload->offset);
  std::memcpy(buffer, upload->object->data() + upload->offset, bytes);
  upload->offset += bytes;
  return bytes;
}

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

CurlHandle new_handle(const std::string& url, unsigned timeout_seconds)
{
  global_init();
  CurlHandle handle(curl_easy_init(), curl_easy_cleanup);
  if (handle) {
    curl_easy_setopt(handle.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle.get(), CURLOPT_NOSIGNAL, 1L); // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(handle.get(), CURLOPT_CONNECTTIMEOUT, static_cast<long>(std::min(timeout_seconds, 10u)));
    curl_easy_setopt(handle.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout_seconds));
    curl_easy_setopt(handle.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle.get(), CURLOPT_USERAGENT, "kmodsync/" KMODSYNC_VERSION);
  }
  return handle;
}

} // namespace

RemoteCache::RemoteCache(RemoteCacheSettings settings) : m_settings(std::move(settings))
{
  while (m_settings.url.size() > 1 && m_settings.url.back() == '/') {
    m_settings.url.pop_back();
  }
}

std::string RemoteCache::shown_url() const
{
  const auto scheme = m_settings.url.find("://");
  const auto at = m_settings.url.find('@');
  const auto slash = m_settings.url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos || (slash != std::string::npos && at > slash)) {
    return m_settings.url;
  }
  return m_settings.url.substr(0, scheme + 3) + m_settings.url.substr(at + 1);
}

std::string RemoteCache::object_url(const std::string& key) const
{
  if (m_settings.layout == "subdirs" && key.size() > 2) {
    return m_settings.url + "/" + key.substr(0, 2) + "/" + key.substr(2);
  }
  return m_settings.url + "/" + key;
}

Expected<std::optional<std::string>> RemoteCache::get(const std::string& key) const
{
  auto handle = new_handle(object_url(key), m_settings.timeout_seconds);
  if (!handle) {
    return error("remote cache {}: cannot set up a request", shown_url());
  }
  std::string body;
  curl_easy_setopt(handle.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(handle.get(), CURLOPT_WRITEDATA, &body);
  const CURLcode code = curl_easy_perform(handle.get());
  long status = 0;
  curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
  if (code != CURLE_OK) {
    return error("remote cache {}: GET {}: {}", shown_url(), key, curl_easy_strerror(code));
  }
  if (status == 404) {
    return std::optional<std::string>();
  }
  if (status != 200) {
    return error("remote cache {}: GET {}: HTTP {}", shown_url(), key, status);
  }
  return std::optional<std::string>(std::move(body));
}

Expected<void> RemoteCache::put(const std::string& key, const std::string& object) const
{
  auto handle = new_handle(object_url(key), m_settings.timeout_seconds);
  if (!handle) {
    return error("remote cache {}: cannot set up a request", shown_url());
  }
  Upload upload{&object};
  std::string response;
  curl_easy_setopt(handle.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(handle.get(), CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(handle.get(), CURLOPT_READDATA, &upload);
  curl_easy_setopt(handle.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(object.size()));
  curl_easy_setopt(handle.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(handle.get(), CURLOPT_WRITEDATA, &response);
  const CURLcode code = curl_easy_perform(handle.get());
  long status = 0;
  curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
  if (code != CURLE_OK) {
    return error("remote cache {}: PUT {}: {}", shown_url(), key, curl_easy_strerror(code));
  }
  if (status < 200 || status >= 300) {
    return error("remote cache {}: PUT {}: HTTP {}", shown_url(), key, status);
  }
  return {};
}

} // namespace kmodsync
