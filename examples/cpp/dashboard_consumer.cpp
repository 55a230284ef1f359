// A dashboard-style consumer: a pump thread reads the source; this thread only looks at the state,
// redrawn whenever events arrive (at least once a second). Usage: dashboard_consumer URI [--follow]
// URI: a path, file:///path, unix:///path.sock (listens for emitters), or tcp:// / ipc:// with
// foxml::events_reader_zmq linked and foxml::events::reader::enable_zmq_source_uris() called.
#include <foxml/events/reader/live_reader.hpp>
#include <foxml/events/reader/run_json.hpp>

#include <cstdio>
#include <string>

namespace fr = foxml::events::reader;

int main(int argc, char** argv) try {
  if (argc < 2) return std::fprintf(stderr, "usage: dashboard_consumer URI [--follow]\n"), 2;
  fr::live_reader_options options;
  options.source.follow = argc > 2 && std::string(argv[2]) == "--follow";
  fr::live_reader reader(argv[1], options);
  reader.start();
  std::uint64_t cursor = 0;
  for (bool done = false; !done;) {
    done = reader.finished();  // read before drawing: the last round draws the final state
    cursor = reader.buffer().wait_since(cursor, std::chrono::seconds(1)).next;
    for (const fr::run_state& run : reader.runs()) {
      std::printf("%s [%s] %5.1f%% stage=%s events=%llu\n", run.run_id.c_str(), fr::to_string(run.status),
                  run.progress_pct, run.stage.c_str(), static_cast<unsigned long long>(run.events));
    }
  }
  // What a bridge's /api/runs/{id} would answer.
  if (const auto latest = reader.latest()) std::printf("%s\n", fr::to_json(*latest, latest->last_seen_us).c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "dashboard_consumer: %s\n", e.what());
  return 1;
}
