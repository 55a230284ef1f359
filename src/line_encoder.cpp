#include "line_encoder.hpp"

#include <nlohmann/json.hpp>

#include "foxml/events/codec.hpp"
#include "foxml/events/schema.hpp"
#include "json_scan.hpp"

namespace foxml::events::detail {
namespace {
// Below this many bytes per string, shortening further stops helping; the event is dropped.
constexpr std::size_t min_string_limit = 16;
}  // namespace

line_encoder::line_encoder(const stamp& identity, std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {
  for (std::size_t i = 0; i < event_type_count; ++i) {
    std::string& prefix = type_prefix_[i];
    prefix = "{\"event_type\":\"";
    prefix.append(to_string(static_cast<event_type>(i)));
    prefix.append("\",\"run_id\":");
    append_json_string(prefix, identity.run_id);
    prefix.append(",\"timestamp\":\"");
  }
  process_fields_ = ",\"pid\":";
  append_json_integer(process_fields_, identity.pid);
  process_fields_.append(",\"host\":");
  append_json_string(process_fields_, identity.host);
  process_fields_.append(",\"rank\":");
  append_json_integer(process_fields_, identity.rank);
  process_fields_.append(",\"world_size\":");
  append_json_integer(process_fields_, identity.world_size);
  process_fields_.append(",\"local_rank\":");
  append_json_integer(process_fields_, identity.local_rank);
}

encode_outcome line_encoder::encode(const record& r, std::int64_t unix_ns, line_batch& batch) {
  json_out out(batch);
  const std::size_t start = out.position();
  std::size_t limit = max_line_bytes_;
  for (;;) {
    cut_ = false;
    write_line(out, r, unix_ns, limit);
    if (out.position() - start <= max_line_bytes_) {
      out.finish();
      batch.commit(start, r.seq);
      return (cut_ || (r.flags & record_flag_truncated) != 0) ? encode_outcome::truncated : encode_outcome::ok;
    }
    out.rewind(start);
    if (limit <= min_string_limit) return encode_outcome::oversize;
    limit = std::max(min_string_limit, std::min(limit, max_line_bytes_) / 4);
  }
}

void line_encoder::write_line(json_out& out, const record& r, std::int64_t unix_ns, std::size_t string_limit) {
  out.raw(type_prefix_[static_cast<std::size_t>(r.type)]);
  timestamps_.write(out, unix_ns);
  out.literal("\",\"seq\":");
  write_json_unsigned(out, r.seq);
  out.raw(process_fields_);
  payload_reader in(r.payload(), r.size);
  for (const field_spec& field : fields_of(r.type)) {
    if (in.done()) break;
    const value_tag tag = in.tag();
    if (tag == value_tag::absent) continue;
    out.ensure(field.key.size() + 4);
    out.put(',');
    out.put('"');
    out.raw(field.key);
    out.put('"');
    out.put(':');
    write_value(out, in, tag, string_limit);
  }
  if (cut_ || (r.flags & record_flag_truncated) != 0) out.literal(",\"truncated\":true");
  out.literal("}\n");
}

void line_encoder::write_string(json_out& out, std::string_view s, std::size_t string_limit) {
  if (write_json_string(out, s, string_limit)) cut_ = true;
}

void line_encoder::write_value(json_out& out, payload_reader& in, value_tag tag, std::size_t string_limit) {
  switch (tag) {
    case value_tag::absent:
    case value_tag::null: out.literal("null"); return;
    case value_tag::string: write_string(out, in.string(), string_limit); return;
    case value_tag::number: write_json_number(out, in.get<double>()); return;
    case value_tag::integer: write_json_integer(out, in.get<std::int64_t>()); return;
    case value_tag::boolean: in.get<std::uint8_t>() != 0 ? out.literal("true") : out.literal("false"); return;
    case value_tag::metric_map: {
      const auto count = in.get<std::uint32_t>();
      out.push('{');
      for (std::uint32_t i = 0; i < count; ++i) {
        if (i != 0) out.push(',');
        write_string(out, in.string(), string_limit);
        out.push(':');
        write_json_number(out, in.get<double>());
      }
      out.push('}');
      return;
    }
    case value_tag::json_object: write_config(out, in.string(), string_limit); return;
    case value_tag::string_list: {
      const auto count = in.get<std::uint32_t>();
      out.push('[');
      for (std::uint32_t i = 0; i < count; ++i) {
        if (i != 0) out.push(',');
        write_string(out, in.string(), string_limit);
      }
      out.push(']');
      return;
    }
    case value_tag::gpu_list: {
      const auto count = in.get<std::uint32_t>();
      out.push('[');
      for (std::uint32_t i = 0; i < count; ++i) {
        if (i != 0) out.push(',');
        out.push('{');
        bool first = true;
#define FOXML_EVENTS_GPU_ENCODE(key, kind, nullable) \
  write_gpu_member<field_kind::kind, nullable>(out, in, first, ",\"" #key "\":", string_limit);
        FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_ENCODE)
#undef FOXML_EVENTS_GPU_ENCODE
        out.push('}');
      }
      out.push(']');
      return;
    }
  }
  out.literal("null");
}

// One member of a GPU object, in FOXML_EVENTS_GPU_KEYS order (record.hpp writes them so); `key` is
// `,"name":`, its comma left off for the object's first member. An optional member left empty is
// left out.
template <field_kind kind, bool nullable, std::size_t N>
void line_encoder::write_gpu_member(json_out& out, payload_reader& in, bool& first, const char (&key)[N],
                                    std::size_t string_limit) {
  if constexpr (nullable) {
    const bool present = in.get<std::uint8_t>() != 0;
    const double value = in.get<double>();
    if (!present) return;
    out.raw(std::string_view(key + (first ? 1 : 0), N - 1 - (first ? 1 : 0)));
    write_json_number(out, value);
  } else {
    out.raw(std::string_view(key + (first ? 1 : 0), N - 1 - (first ? 1 : 0)));
    if constexpr (kind == field_kind::string) write_string(out, in.string(), string_limit);
    else if constexpr (kind == field_kind::number) write_json_number(out, in.get<double>());
    else write_json_integer(out, in.get<std::int64_t>());
  }
  first = false;
}

// The config arrives as text from the caller. It is parsed (keeping the caller's key order) and
// written back compact, so a pretty-printed config cannot break the one-line rule and invalid JSON
// cannot reach the wire.
void line_encoder::write_config(json_out& out, std::string_view text, std::size_t string_limit) {
  if (text.size() <= string_limit && nested_deeper_than(text, max_config_depth)) {
    // Written as is, the line would be deeper than the reader accepts: the whole run_start lost.
    out.literal("{\"_too_deep_config\":");
  } else if (text.size() <= string_limit) {
    const auto parsed = nlohmann::ordered_json::parse(text.begin(), text.end(), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) {
      out.raw(parsed.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
      return;
    }
    out.literal("{\"_invalid_config\":");
  } else {
    out.literal("{\"_truncated_config\":");
  }
  write_string(out, text, string_limit);
  out.push('}');
}

}  // namespace foxml::events::detail
