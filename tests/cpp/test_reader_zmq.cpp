// The ZeroMQ subscriber against a real PUB socket using the agreed two-frame layout:
// topic `<event_type>\x1f<run_id>\x1f`, then the JSON line.
#include <doctest/doctest.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events.hpp"
#include "foxml/events/reader/zmq_source.hpp"
#include "foxml/events/zmq_sink.hpp"

using namespace foxml::events::reader;

// libzmq is not built with ThreadSanitizer: its I/O thread takes message buffers over lock-free
// pipes TSan cannot see, so every handover reads as a race inside libzmq. Ours are still checked.
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libzmq.so.5\nrace:libzmq.so.5\n";
}

namespace {

void publish(zmq::socket_t& pub, std::string_view type, std::string_view run, std::uint64_t seq) {
  const std::string topic = std::string(type) + '\x1f' + std::string(run) + '\x1f';
  std::string body = reader_test::line(seq, run, type);
  body.pop_back();
  pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
  pub.send(zmq::buffer(body), zmq::send_flags::none);
}

// PUB/SUB joins asynchronously: publish probes until the subscriber sees one, then the real data.
std::vector<stream_event> collect(zmq::socket_t& pub, zmq_source& sub, const std::function<void()>& send_all,
                                  std::size_t want, std::string_view probe_type, std::string_view probe_run) {
  event_stream stream;
  std::vector<stream_event> got;
  std::uint64_t probe = 1000000;
  reader_test::pump_until(sub, stream, got, [&] {
    if (!got.empty()) return true;
    publish(pub, probe_type, probe_run, probe++);
    return false;
  });
  got.clear();
  send_all();
  reader_test::pump_until(sub, stream, got, [&] { return got.size() >= want; });
  // Anything unwanted would have arrived by now, in order, ahead of a final probe.
  publish(pub, probe_type, probe_run, probe++);
  reader_test::pump_until(sub, stream, got, [&] { return got.size() >= want + 1; });
  if (!got.empty()) got.pop_back();
  return got;
}

}  // namespace

TEST_CASE("receives every event over ipc://") {
  reader_test::temp_dir dir;
  const std::string endpoint = "ipc://" + (dir / "pub.ipc");
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.bind(endpoint);
  zmq_source sub(endpoint);
  const auto got = collect(pub, sub, [&] {
    for (std::uint64_t s = 0; s < 500; ++s) publish(pub, "progress", "r1", s);
  }, 500, "heartbeat", "r1");
  REQUIRE(got.size() == 500);
  for (std::uint64_t s = 0; s < 500; ++s) CHECK(got[s].value.seq == s);
}

TEST_CASE("filters by type and by run through subscriptions") {
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.bind("inproc://events");
  zmq_source_options by_type;
  by_type.types = {foxml::events::event_type::error, foxml::events::event_type::heartbeat};
  zmq_source errors("inproc://events", by_type, &ctx);
  zmq_source_options by_run;
  by_run.runs = {"wanted"};
  zmq_source wanted("inproc://events", by_run, &ctx);

  // Each round uses new seqs: `wanted` also queued round one's events, and a repeat would be a
  // duplicate to the event stream.
  std::uint64_t base = 0;
  const auto send_mix = [&] {
    for (std::uint64_t s = 0; s < 30; ++s) {
      publish(pub, s % 3 == 0 ? "error" : "progress", s % 2 == 0 ? "wanted" : "other", base + s);
    }
    base += 30;
  };
  const auto got_errors = collect(pub, errors, send_mix, 10, "heartbeat", "x");
  CHECK(got_errors.size() == 10);
  for (const auto& e : got_errors) CHECK(e.value.type == foxml::events::event_type::error);

  const auto got_wanted = collect(pub, wanted, send_mix, 15, "heartbeat", "wanted");
  CHECK(got_wanted.size() == 15);
  for (const auto& e : got_wanted) CHECK(e.value.run_id == "wanted");
}

TEST_CASE("a run filter matches run ids holding quotes, backslashes and control characters") {
  // The real publisher (an emitter with a zmq_sink) builds the topics; the subscriber must build
  // the same bytes for its prefixes.
  zmq::context_t ctx;
  const std::vector<std::string> hostile = {"a\"b", "c\\d", std::string("e\x01f"), "g\th\n"};
  foxml::events::zmq_sink_options o;
  o.endpoint = "inproc://hostile";
  o.context = &ctx;
  std::vector<std::unique_ptr<foxml::events::training_event_emitter>> emitters;
  emitters.push_back(std::make_unique<foxml::events::training_event_emitter>(
      "plain", std::make_unique<foxml::events::zmq_sink>(o)));
  zmq_source_options by_run;
  by_run.runs.insert(hostile.begin(), hostile.end());
  zmq_source sub("inproc://hostile", by_run, &ctx);
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    o.endpoint = "inproc://hostile" + std::to_string(i);
    emitters.push_back(std::make_unique<foxml::events::training_event_emitter>(
        hostile[i], std::make_unique<foxml::events::zmq_sink>(o)));
  }
  // `sub` hears only the plain run's publisher (nothing must pass); each hostile run's publisher
  // gets a subscriber with the same filter.
  std::vector<std::unique_ptr<zmq_source>> subs;
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    subs.push_back(std::make_unique<zmq_source>("inproc://hostile" + std::to_string(i), by_run, &ctx));
  }
  event_stream stream;
  std::vector<stream_event> got;
  std::set<std::string> runs_seen;
  // Subscriptions reach a PUB asynchronously: keep emitting until every hostile run got through.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (runs_seen.size() < hostile.size() && std::chrono::steady_clock::now() < until) {
    for (auto& e : emitters) {
      e->emit_heartbeat();
      e->flush();
    }
    const auto on_line = [&](const raw_line& l) {
      if (auto e = stream.push(l)) runs_seen.insert(e->value.run_id);
    };
    sub.poll(std::chrono::milliseconds(5), on_line);
    for (auto& s : subs) s->poll(std::chrono::milliseconds(5), on_line);
  }
  CHECK(runs_seen == std::set<std::string>(hostile.begin(), hostile.end()));
  CHECK(stream.stats().malformed == 0);
}

namespace {
extern "C" void ignore_signal(int) {}
}  // namespace

TEST_CASE("a signal during poll interrupts it without an exception") {
  struct sigaction action {};
  action.sa_handler = ignore_signal;  // no SA_RESTART: blocking calls return EINTR, as in events-tail
  struct sigaction previous {};
  REQUIRE(::sigaction(SIGUSR1, &action, &previous) == 0);
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.bind("inproc://quiet");
  zmq_source sub("inproc://quiet", {}, &ctx);
  std::atomic<bool> returned{false};
  const pthread_t poller = ::pthread_self();
  std::thread signaller([&] {
    while (!returned) {
      ::pthread_kill(poller, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const auto started = std::chrono::steady_clock::now();
  CHECK_NOTHROW(sub.poll(std::chrono::seconds(30), [](const raw_line&) {}));
  returned = true;
  signaller.join();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(25));  // liveness only
  ::sigaction(SIGUSR1, &previous, nullptr);
}
