// SPDX-License-Identifier: GPL-2.0-or-later
#include "kmodsync/remote_cache.hpp"

#include "curl_library.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace kmodsync {

namespace {

// Objects are build results: a few modules and a log. Anything far bigger is not one.
constexpr std::size_t k_max_object_bytes = 512u << 20;

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

// One request; the handle is cleaned up with it.
class Request
{
public:
  Request(const CurlLibrary& curl, const std::string& url, unsigned timeout_seconds)
    : m_curl(curl), m_handle(curl.easy_init())
  {
    if (m_handle) {
      set(CURLOPT_URL, url.c_str());
      set(CURLOPT_NOSIGNAL, 1L); // threads: no SIGALRM for DNS timeouts
      set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(std::min(timeout_seconds, 10u)));
      set(CURLOPT_TIMEOUT, static_cast<long>(timeout_seconds));
      set(CURLOPT_PROTOCOLS_STR, "http,https");
      set(CURLOPT_USERAGENT, "kmodsync/" KMODSYNC_VERSION);
    }
  }
  ~Request()
  {
    if (m_handle) {
      m_curl.easy_cleanup(m_handle);
    }
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  explicit operator bool() const { return m_handle != nullptr; }

  template <typename Value>
  void set(CURLoption option, Value value)
  {
    m_curl.easy_setopt(m_handle, option, value);
  }

  // The transfer's outcome and the HTTP status (0 when there was no response).
  std::pair<CURLcode, long> perform()
  {
    const CURLcode code = m_curl.easy_perform(m_handle);
    long status = 0;
    m_curl.easy_getinfo(m_handle, CURLINFO_RESPONSE_CODE, &status);
    return {code, status};
  }

  const char* describe(CURLcode code) const { return m_curl.easy_strerror(code); }

private:
  const CurlLibrary& m_curl;
  CURL* m_handle;
};

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
  auto curl = curl_library();
  if (!curl) {
    return error("remote cache {}: {}", shown_url(), curl.error());
  }
  Request request(**curl, object_url(key), m_settings.timeout_seconds);
  if (!request) {
    return error("remote cache {}: cannot set up a request", shown_url());
  }
  std::string body;
  request.set(CURLOPT_WRITEFUNCTION, append_body);
  request.set(CURLOPT_WRITEDATA, &body);
  const auto [code, status] = request.perform();
  if (code != CURLE_OK) {
    return error("remote cache {}: GET {}: {}", shown_url(), key, request.describe(code));
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
  auto curl = curl_library();
  if (!curl) {
    return error("remote cache {}: {}", shown_url(), curl.error());
  }
  Request request(**curl, object_url(key), m_settings.timeout_seconds);
  if (!request) {
    return error("remote cache {}: cannot set up a request", shown_url());
  }
  Upload upload{&object};
  std::string response;
  request.set(CURLOPT_UPLOAD, 1L);
  request.set(CURLOPT_READFUNCTION, read_upload);
  request.set(CURLOPT_READDATA, &upload);
  request.set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(object.size()));
  request.set(CURLOPT_WRITEFUNCTION, append_body);
  request.set(CURLOPT_WRITEDATA, &response);
  const auto [code, status] = request.perform();
  if (code != CURLE_OK) {
    return error("remote cache {}: PUT {}: {}", shown_url(), key, request.describe(code));
  }
  if (status < 200 || status >= 300) {
    return error("remote cache {}: PUT {}: HTTP {}", shown_url(), key, status);
  }
  return {};
}

} // namespace kmodsync
