#pragma once
// Turns captured records into JSON lines, following the schema table.

#include <cstddef>
#include <cstdint>
#include <string>

#include "foxml/events/detail/emitter_state.hpp"
#include "foxml/events/detail/record.hpp"
#include "foxml/events/schema_keys.hpp"
#include "foxml/events/sink.hpp"
#include "json_writer.hpp"

namespace foxml::events::detail {

enum class encode_outcome { ok, truncated, oversize };

class line_encoder {
 public:
  line_encoder(const stamp& identity, std::size_t max_line_bytes);

  // Appends the line for `r` (with its `\n`) to `batch`. A line over the cap is written again with
  // shorter strings (and `"truncated":true`); when even that does not fit, nothing is appended.
  encode_outcome encode(const record& r, std::int64_t unix_ns, line_batch& batch);

 private:
  void write_line(json_out& out, const record& r, std::int64_t unix_ns, std::size_t string_limit);
  void write_value(json_out& out, payload_reader& in, value_tag tag, std::size_t string_limit);
  void write_string(json_out& out, std::string_view s, std::size_t string_limit);
  template <field_kind kind, bool nullable, std::size_t N>
  void write_gpu_member(json_out& out, payload_reader& in, bool& first, const char (&key)[N], std::size_t string_limit);
  void write_config(json_out& out, std::string_view text, std::size_t string_limit);

  std::string type_prefix_[event_type_count];  // {"event_type":"...","run_id":"...","timestamp":"
  std::string process_fields_;                 // ,"pid":..,"host":"..","rank":..,"world_size":..,"local_rank":..
  std::size_t max_line_bytes_;
  timestamp_formatter timestamps_;
  bool cut_ = false;  // a string of the line being written was shortened
};

}  // namespace foxml::events::detail
