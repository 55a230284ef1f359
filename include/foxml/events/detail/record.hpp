#pragma once
// The captured form of an event: what the hot path copies into a queue slot. A compact run of
// tagged values written in schema order; the worker turns it into a JSON line. No JSON here: the
// producer only copies bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>

#include "foxml/events/event.hpp"

namespace foxml::events::detail {

enum class value_tag : std::uint8_t {
  absent,  // key omitted
  null,
  string,
  number,
  integer,
  boolean,
  metric_map,
  json_object,
  string_list,
  gpu_list,
};

inline constexpr std::uint8_t record_flag_truncated = 1;  // a string was cut at capture

// Sized so that a queue slot (record + turn counter) is four cache lines.
inline constexpr std::size_t record_inline_bytes = 216;

struct record {
  std::uint64_t seq;
  std::uint64_t ticks;  // clock ticks at emit; the worker converts them to wall time
  event_type type;
  std::uint8_t flags;
  std::uint32_t size;  // payload bytes
  std::byte* heap;     // owns the payload when it did not fit inline; freed by the worker
  std::byte inline_payload[record_inline_bytes];

  const std::byte* payload() const noexcept { return heap != nullptr ? heap : inline_payload; }
};

// Payload writers come in two passes over the same visitor code: one measures, one copies.
// Sharing the visitor keeps the byte layout and the measured size in agreement by construction.
class payload_measure {
 public:
  explicit payload_measure(std::size_t max_string) noexcept : max_string_(max_string) {}
  std::size_t size() const noexcept { return size_; }
  bool truncates() const noexcept { return truncates_; }

  void absent() noexcept { size_ += 1; }
  void null() noexcept { size_ += 1; }
  void str(std::string_view s) noexcept { size_ += 1 + string_bytes(s); }
  void num(double) noexcept { size_ += 1 + sizeof(double); }
  void i64(std::int64_t) noexcept { size_ += 1 + sizeof(std::int64_t); }
  void boolean(bool) noexcept { size_ += 2; }
  void metrics(const metric* m, std::size_t n) noexcept {
    size_ += 1 + sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) size_ += string_bytes(m[i].name) + sizeof(double);
  }
  void json(std::string_view text) noexcept { size_ += 1 + string_bytes(text); }
  void strings(const std::string_view* s, std::size_t n) noexcept {
    size_ += 1 + sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) size_ += string_bytes(s[i]);
  }
  void gpus(const gpu_sample* g, std::size_t n) noexcept {
    size_ += 1 + sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) {
#define FOXML_EVENTS_GPU_MEASURE(key, kind, nullable) size_ += gpu_member_bytes(g[i].key);
      FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_MEASURE)
#undef FOXML_EVENTS_GPU_MEASURE
    }
  }

 private:
  template <class T>
  std::size_t gpu_member_bytes(const T& v) noexcept {
    if constexpr (std::is_same_v<T, std::string_view>) return string_bytes(v);
    else if constexpr (std::is_same_v<T, std::optional<double>>) return 1 + sizeof(double);  // flag, value
    else return sizeof(T);
  }

  std::size_t string_bytes(std::string_view s) noexcept {
    if (s.size() > max_string_) {
      truncates_ = true;
      return sizeof(std::uint32_t) + max_string_;
    }
    return sizeof(std::uint32_t) + s.size();
  }

  std::size_t max_string_;
  std::size_t size_ = 0;
  bool truncates_ = false;
};

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
inline std::string_view clip_utf8(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s;
  std::size_t cut = max;
  // s[cut] is the first byte dropped; while it continues a sequence (10xxxxxx), the kept prefix
  // would end mid-character. A UTF-8 character has at most three continuation bytes.
  for (int step = 0; step < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++step) --cut;
  return s.substr(0, cut);
}

class payload_writer {
 public:
  payload_writer(std::byte* out, std::size_t max_string) noexcept : out_(out), max_string_(max_string) {}

  void absent() noexcept { tag(value_tag::absent); }
  void null() noexcept { tag(value_tag::null); }
  void str(std::string_view s) noexcept {
    tag(value_tag::string);
    raw_string(s);
  }
  void num(double v) noexcept {
    tag(value_tag::number);
    put(v);
  }
  void i64(std::int64_t v) noexcept {
    tag(value_tag::integer);
    put(v);
  }
  void boolean(bool v) noexcept {
    tag(value_tag::boolean);
    put(static_cast<std::uint8_t>(v ? 1 : 0));
  }
  void metrics(const metric* m, std::size_t n) noexcept {
    tag(value_tag::metric_map);
    put(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      raw_string(m[i].name);
      put(m[i].value);
    }
  }
  void json(std::string_view text) noexcept {
    tag(value_tag::json_object);
    raw_string(text);
  }
  void strings(const std::string_view* s, std::size_t n) noexcept {
    tag(value_tag::string_list);
    put(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) raw_string(s[i]);
  }
  void gpus(const gpu_sample* g, std::size_t n) noexcept {
    tag(value_tag::gpu_list);
    put(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
#define FOXML_EVENTS_GPU_WRITE(key, kind, nullable) gpu_member(g[i].key);
      FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_WRITE)
#undef FOXML_EVENTS_GPU_WRITE
    }
  }

 private:
  // GPU members go untagged, in FOXML_EVENTS_GPU_KEYS order; an optional one as a flag and a value.
  template <class T>
  void gpu_member(const T& v) noexcept {
    if constexpr (std::is_same_v<T, std::string_view>) {
      raw_string(v);
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      put(static_cast<std::uint8_t>(v ? 1 : 0));
      put(v.value_or(0.0));
    } else {
      put(v);
    }
  }

  void tag(value_tag t) noexcept { put(static_cast<std::uint8_t>(t)); }
  template <class T>
  void put(const T& v) noexcept {
    std::memcpy(out_, &v, sizeof(T));
    out_ += sizeof(T);
  }
  void raw_string(std::string_view s) noexcept {
    if (s.size() > max_string_) s = clip_utf8(s, max_string_);
    put(static_cast<std::uint32_t>(s.size()));
    if (!s.empty()) std::memcpy(out_, s.data(), s.size());
    out_ += s.size();
  }

  std::byte* out_;
  std::size_t max_string_;
};

// Reads a payload back in the order it was written. Used by the worker only.
class payload_reader {
 public:
  payload_reader(const std::byte* data, std::size_t size) noexcept : cur_(data), end_(data + size) {}

  bool done() const noexcept { return cur_ >= end_; }
  value_tag tag() noexcept { return static_cast<value_tag>(get<std::uint8_t>()); }
  template <class T>
  T get() noexcept {
    T v{};
    if (cur_ + sizeof(T) <= end_) std::memcpy(&v, cur_, sizeof(T));
    cur_ += sizeof(T);
    return v;
  }
  std::string_view string() noexcept {
    const auto n = get<std::uint32_t>();
    if (cur_ + n > end_) {
      cur_ = end_;
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(cur_), n);
    cur_ += n;
    return s;
  }

 private:
  const std::byte* cur_;
  const std::byte* end_;
};

}  // namespace foxml::events::detail
