// events-ctl: sends a command (cancel, pause, resume, checkpoint or the application's own) to a
// running trainer and prints the acknowledgement; `list` shows the runs reachable through their
// control endpoints. A thin front end over the reader library's commands.hpp.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "foxml/events/reader/commands.hpp"
#include "foxml/events/schema_keys.hpp"
#ifdef FOXML_EVENTS_TAIL_ZMQ
#include "foxml/events/reader/zmq_source.hpp"
#endif

namespace fr = foxml::events::reader;
namespace schema = foxml::events::schema;

namespace {

constexpr int exit_ok = 0, exit_unknown_or_usage = 1, exit_no_ack = 2;

const char* const exit_codes_help =
    "Transports: --socket PATH relays through an events-tail/EventReader listening on PATH;\n"
    "--zmq ENDPOINT publishes on the command endpoint (the event endpoint's port + 1, or\n"
    "--commands); default: the run's control endpoint in --control-dir (default: the directory\n"
    "of the default event file, /control).\n"
    "Exit codes:\n"
    "  0  acknowledged by the run (list: listed)\n"
    "  1  unknown run, or bad arguments\n"
    "  2  no acknowledgement in time, or the transport failed\n";

// What the run's state looks like in the emitter's status answer.
std::string state_of(const fr::control_endpoint& e) {
  if (!e.running) return "not running";
  const auto status = nlohmann::json::parse(e.status_json, nullptr, false);
  if (!status.is_object()) return "running";
  if (status.value("stop_requested", false)) return "stopping";
  if (status.value("paused", false)) return "paused";
  return "running";
}

int list(const std::string& dir, std::chrono::milliseconds timeout, bool as_json) {
  const auto endpoints = fr::list_control_endpoints(dir, timeout);
  if (as_json) {
    for (const auto& e : endpoints) {
      nlohmann::json j = {{"run_id", e.run_id}, {"pid", e.pid},         {"host", e.host},
                          {"state", state_of(e)}, {"endpoint", e.path}, {"running", e.running}};
      if (!e.status_json.empty()) {
        j[std::string(schema::names::status)] = nlohmann::json::parse(e.status_json, nullptr, false);
      }
      if (!e.error.empty()) j["error"] = e.error;
      std::puts(j.dump().c_str());
    }
    return exit_ok;
  }
  if (endpoints.empty()) {
    fmt::print("no control endpoints in {}\n", dir);
    return exit_ok;
  }
  fmt::print("{:<32} {:>8} {:<16} {:<12} {}\n", "RUN", "PID", "HOST", "STATE", "ENDPOINT");
  for (const auto& e : endpoints) {
    fmt::print("{:<32} {:>8} {:<16} {:<12} {}\n", e.run_id, e.pid, e.host.empty() ? "-" : e.host, state_of(e), e.path);
  }
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sends a command to a running foxml trainer and waits for its acknowledgement.", "events-ctl"};
  app.footer(exit_codes_help);
  app.require_subcommand(1);
  app.fallthrough();
  std::string socket_path, zmq_endpoint, commands_endpoint, control_dir;
  double timeout_s = std::chrono::duration<double>(fr::default_command_timeout).count();
  bool as_json = false;
  auto* socket_opt = app.add_option("--socket", socket_path, "relay through the listener on this Unix socket");
  auto* zmq_opt = app.add_option("--zmq", zmq_endpoint, "the ZeroMQ event endpoint (tcp://h:5558, ipc://...)");
  auto* commands_opt =
      app.add_option("--commands", commands_endpoint, "the ZeroMQ command endpoint (default: --zmq's port + 1)");
  auto* dir_opt = app.add_option("--control-dir", control_dir, "directory of control endpoints");
  socket_opt->excludes(zmq_opt, dir_opt);
  zmq_opt->excludes(dir_opt);
  commands_opt->needs(zmq_opt);
  foxml::events::curve_settings curve;
  auto* curve_server_opt = app.add_option("--curve-server-key", curve.server_key,
                                          "CURVE: the server's (events-proxy's) public key, Z85 or a public-key file");
  auto* curve_keys_opt =
      app.add_option("--curve-keys", curve.keys, "CURVE: this sender's key file (0600), with --curve-server-key");
  curve_server_opt->needs(zmq_opt, curve_keys_opt);
  curve_keys_opt->needs(zmq_opt, curve_server_opt);
  app.add_option("--timeout", timeout_s, "seconds to wait for the acknowledgement")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_flag("--json", as_json, "print the acknowledgement (list: each run) as JSON");

  std::string run_id, name, arg_json;
  std::vector<CLI::App*> sends;
  for (const char* builtin : {"cancel", "pause", "resume", "checkpoint"}) {
    auto* sub = app.add_subcommand(builtin, fmt::format("send `{}` to RUN_ID", builtin));
    sub->add_option("RUN_ID", run_id, "the run")->required();
    sub->add_option("--arg", arg_json, "a JSON argument");
    sends.push_back(sub);
  }
  auto* send = app.add_subcommand("send", "send a command of the application's own");
  send->add_option("RUN_ID", run_id, "the run")->required();
  send->add_option("NAME", name, "the command's name ([A-Za-z0-9_.-]{1,64})")->required();
  send->add_option("--arg", arg_json, "a JSON argument");
  sends.push_back(send);
  auto* list_cmd = app.add_subcommand("list", "list the runs with a control endpoint in --control-dir, with their state");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? exit_ok : exit_unknown_or_usage;
  }
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000.0));
  if (control_dir.empty()) control_dir = fr::default_control_directory();
#ifdef FOXML_EVENTS_TAIL_ZMQ
  fr::enable_zmq_commands();
#endif

  if (list_cmd->parsed()) {
    if (!socket_path.empty() || !zmq_endpoint.empty()) {
      std::fprintf(stderr, "events-ctl: list reads control endpoints (--control-dir) only\n");
      return exit_unknown_or_usage;
    }
    return list(control_dir, timeout, as_json);
  }
  for (auto* sub : sends) {
    if (sub->parsed() && sub != send) name = sub->get_name();
  }

  fr::command_request request{run_id, name, arg_json, "", ""};
  fr::command_result result;
  try {
    fr::encode_command(request);  // a bad name or argument is a usage error, said before sending
    if (!socket_path.empty()) {
      result = fr::send_command_relay(socket_path, request, timeout);
    } else if (!zmq_endpoint.empty()) {
      result = fr::send_command_zmq(zmq_endpoint, commands_endpoint, request, timeout, curve);
    } else {
      result = fr::send_command_control(control_dir, request, timeout);
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "events-ctl: %s\n", e.what());
    return exit_unknown_or_usage;
  }

  if (as_json) {
    nlohmann::json j = {{"ok", result.ok},     {"acknowledged", result.acknowledged}, {"duplicate", result.duplicate},
                        {"id", result.id},     {"run_id", run_id},                    {"via", result.via},
                        {"delivered", result.delivered}};
    j[std::string(schema::names::command)] = name;
    if (!result.error.empty()) j["error"] = result.error;
    nlohmann::json received = nlohmann::json::array();
    for (const auto& line : result.received) received.push_back(nlohmann::json::parse(line, nullptr, false));
    j["received"] = std::move(received);
    std::puts(j.dump().c_str());
  }
  if (result.unknown_run) {
    std::fprintf(stderr, "events-ctl: %s\n", result.error.c_str());
    return exit_unknown_or_usage;
  }
  if (!result.acknowledged) {
    std::fprintf(stderr, "events-ctl: %s %s (id %s): not acknowledged: %s\n", name.c_str(), run_id.c_str(),
                 result.id.c_str(), result.error.c_str());
    return exit_no_ack;
  }
  if (!as_json) {
    fmt::print("{} {}: acknowledged (id {}{}, via {})\n", name, run_id, result.id,
               result.duplicate ? ", duplicate" : "", result.via);
    for (const auto& line : result.received) fmt::print("{}\n", line);
  }
  return exit_ok;
}
