// A downstream trainer: emits a short run to the file named on the command line, then checks
// that every line came back whole and decodable.
#include <foxml/events.hpp>

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: trainer EVENTS.jsonl\n");
    return 2;
  }
  namespace fe = foxml::events;
  {
    fe::training_event_emitter emitter("consumer-run", std::make_unique<fe::file_sink>(argv[1]));
    emitter.emit_run_start();
    emitter.emit_stage_change(std::nullopt, "training");
    for (int step = 0; step < 100; ++step) emitter.emit_metrics(step, {{"loss", 1.0 / (step + 1)}});
    emitter.emit_run_complete("success");
    if (!emitter.close().ok()) return 1;
  }
  std::ifstream in(argv[1]);
  std::string line;
  int decoded = 0;
  while (std::getline(in, line)) {
    if (!fe::decode_line(line)) return 1;
    ++decoded;
  }
  std::printf("%s: %d events decoded, version %s\n", argv[1], decoded, FOXML_EVENTS_VERSION_STRING);
  return decoded == 103 ? 0 : 1;
}
