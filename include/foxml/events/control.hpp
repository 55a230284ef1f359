#pragma once
/// The control back-channel: commands a consumer sends to a running trainer (cancel, pause,
/// resume, checkpoint, or a name of the application's own), the same JSON line on every transport,
/// and where a run's per-run control endpoint lives. The frames and the endpoint protocol are in
/// docs/protocol.md ("Control"); the emitter's side of it is training_event_emitter::should_stop(),
/// poll_command(), on_command(), paused() and wait_while_paused().

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace foxml::events {
namespace detail {
class command_inbox;
}

/// One command, as taken from a transport.
struct command {
  std::string name;      ///< `cancel`, `pause`, `resume`, `checkpoint` or the application's own
  std::string id;        ///< chosen by the sender, unique per command; a repeat is a duplicate
  std::string sender;    ///< who sent it (`user@host:pid`), as the sender says
  std::string run_id;    ///< the run it is for
  std::string arg_json;  ///< a JSON object as compact text (a non-object arg is `{"value":...}`); empty: none
};

/// Longest command line (without its `\n`).
inline constexpr std::size_t max_command_bytes = 4096;
/// Commands an emitter holds for the loop; beyond that new ones are refused (counted).
inline constexpr std::size_t command_inbox_capacity = 256;
/// Ids an emitter remembers to acknowledge a repeated command once only.
inline constexpr std::size_t remembered_command_ids = 256;

/// Whether `name` is a valid command name: `[A-Za-z0-9_.-]{1,64}`.
bool valid_command_name(std::string_view name) noexcept;
/// Whether `id` is a valid command id: 1-64 printable ASCII characters.
bool valid_command_id(std::string_view id) noexcept;

/// A parsed command line, or why it is not one.
struct command_parse {
  std::optional<command> value;
  std::string error;  ///< set when `value` is empty
};

/// Parses one command line (a JSON object, `\n` optional). Never throws.
command_parse parse_command(std::string_view line) noexcept;

/// Whether a line looks like a command (a JSON object with `command` and `run_id` and no
/// `event_type`), cheaply, before parsing it: how a listener or a sink tells commands apart.
bool looks_like_command(std::string_view line) noexcept;

/// The command as one compact JSON line, without `\n` (what senders write). Throws
/// std::invalid_argument for an invalid name or id, or an `arg_json` that is not JSON.
std::string command_to_json(const command& c);

/// The per-run control endpoint of run `run_id` of process `pid` in control directory `dir`:
/// `<dir>/<run_id escaped>.<pid>.sock`, where the escape keeps `[A-Za-z0-9_.-]` and writes any
/// other byte as `%XX`; when that path would be over 107 bytes (a Unix socket's limit), the run id
/// part is `h` and the 16 hex digits of the FNV-1a 64 hash of the run id.
std::string control_endpoint_path(std::string_view dir, std::string_view run_id, std::int64_t pid);

/// The control directory that goes with an event file or a Unix socket at `path`: `<its
/// directory>/control` (`./control` for a bare file name).
std::string control_directory_for(std::string_view path);

/// What an emitter hands its sink chain before its worker starts (sink::attach_control()).
struct control_attachment {
  detail::command_inbox* inbox = nullptr;  ///< where a sink offers the commands it reads
  std::string file_directory;    ///< control directory next to the first file sink ("" until one says)
  std::string socket_directory;  ///< ... next to the first Unix socket sink
};

}  // namespace foxml::events
