// A downstream trainer and dashboard over ZeroMQ, from the installed package's zmq component:
// the emitter publishes on the ipc:// endpoint named on the command line (a sink from a URI),
// and a zmq_source subscribed to it must receive a line.
#include <foxml/events.hpp>
#include <foxml/events/reader/zmq_source.hpp>
#include <foxml/events/zmq_sink.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: zmq_trainer /ABSOLUTE/PATH.ipc\n");
    return 2;
  }
  namespace fe = foxml::events;
  const std::string path = argv[1];
  fe::enable_zmq_sink_uris();
  fe::training_event_emitter emitter("consumer-zmq", fe::make_sink("zmq+ipc://" + path));
  fe::reader::zmq_source source("ipc://" + path);
  std::string got;
  // A subscription reaches the publisher asynchronously: publish until one line comes through.
  for (int attempt = 0; attempt < 3000 && got.empty(); ++attempt) {
    emitter.emit_log("info", "hello over zmq");
    emitter.flush();
    source.poll(std::chrono::milliseconds(10), [&](const fe::reader::raw_line& line) { got = line.text; });
  }
  const fe::decode_result decoded = fe::decode_line(got);
  if (!decoded || decoded.value->run_id != "consumer-zmq") {
    std::fprintf(stderr, "no line received over ZeroMQ\n");
    return 1;
  }
  std::printf("received over ZeroMQ: %s\n", got.c_str());
  return 0;
}
