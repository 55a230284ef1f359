// The ZeroMQ sink with real ZeroMQ (inproc:// with a shared context, and ipc:// from a URI):
// topic frames, subscription filtering by run and by type, high-water-mark drops.
#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <set>
#include <zmq.hpp>

#include "foxml/events.hpp"
#include "foxml/events/zmq_sink.hpp"
#include "foxml/events/zmq_topic.hpp"
#include "support/unix_listener.hpp"

using namespace foxml::events;
using foxml::events::testing::seq_of;
using foxml::events::testing::temp_dir;

namespace {

struct message {
  std::string topic;
  std::string body;
  event value;
};

// Reads every message waiting on `sub`, checking the frame layout of each.
void drain(zmq::socket_t& sub, std::vector<message>& out) {
  for (;;) {
    zmq::message_t topic, body;
    if (!sub.recv(topic, zmq::recv_flags::dontwait)) return;
    REQUIRE(topic.more());
    REQUIRE(sub.recv(body, zmq::recv_flags::none));
    REQUIRE_FALSE(body.more());
    message m{topic.to_string(), body.to_string(), {}};
    REQUIRE(m.body.back() != '\n');
    decode_result decoded = decode_line(m.body);
    REQUIRE_MESSAGE(decoded, decoded.error);
    m.value = *decoded.value;
    CHECK(m.topic == zmq_topic(m.value.type, m.value.run_id));
    out.push_back(std::move(m));
  }
}

std::unique_ptr<sink> pub(zmq::context_t& ctx, const std::string& endpoint, int hwm = 100000) {
  zmq_sink_options o;
  o.endpoint = endpoint;
  o.context = &ctx;
  o.send_hwm = hwm;
  return std::make_unique<zmq_sink>(o);
}

template <class Pred>
bool wait_reading(std::vector<zmq::socket_t*> subs, std::vector<std::vector<message>*> into, Pred pred,
                  const std::function<void()>& nudge) {
  return foxml::events::testing::unix_listener::wait(
      [&] {
        nudge();
        for (std::size_t i = 0; i < subs.size(); ++i) drain(*subs[i], *into[i]);
        return pred();
      },
      20);
}

bool has(const std::vector<message>& got, const std::string& run, event_type type) {
  for (const auto& m : got) {
    if (m.value.run_id == run && m.value.type == type) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("topic frames and the subscription helpers agree") {
  std::string topic;
  CHECK(zmq_topic_of_line("{\"event_type\":\"error\",\"run_id\":\"r\\\"1\",\"seq\":0}", topic));
  CHECK(topic == "error\x1fr\\\"1\x1f");
  CHECK(topic == zmq_topic(event_type::error, "r\"1"));
  CHECK(zmq_type_subscription(event_type::error) == "error\x1f");
  const auto prefixes = zmq_run_subscriptions("run1");
  REQUIRE(prefixes.size() == event_type_count);
  CHECK(prefixes[0] == "run_start\x1frun1\x1f");
  CHECK_FALSE(zmq_topic_of_line("{\"seq\":1}", topic));
  CHECK(topic == "\x1f\x1f");
  // What a subscriber's filters become: everything, types, runs, or types of runs.
  CHECK(zmq_subscriptions({}, {}) == std::vector<std::string>{""});
  CHECK(zmq_subscriptions({event_type::error, event_type::log}, {}) ==
        std::vector<std::string>{zmq_type_subscription(event_type::log), zmq_type_subscription(event_type::error)});
  CHECK(zmq_subscriptions({}, {"run1"}) == prefixes);
  CHECK(zmq_subscriptions({event_type::error}, {"a", "r\"1"}) ==
        std::vector<std::string>{zmq_topic(event_type::error, "a"), zmq_topic(event_type::error, "r\"1")});
}

TEST_CASE("acceptance: a subscriber to one run of two, and one to errors only, get exactly that") {
  zmq::context_t ctx;
  training_event_emitter alpha("alpha", pub(ctx, "inproc://alpha"));
  training_event_emitter beta("beta", pub(ctx, "inproc://beta"));
  zmq::socket_t by_run(ctx, zmq::socket_type::sub), by_type(ctx, zmq::socket_type::sub);
  for (const std::string& prefix : zmq_run_subscriptions("alpha")) by_run.set(zmq::sockopt::subscribe, prefix);
  by_type.set(zmq::sockopt::subscribe, zmq_type_subscription(event_type::error));
  for (auto* s : {&by_run, &by_type}) {
    s->set(zmq::sockopt::rcvhwm, 100000);
    s->connect("inproc://alpha");
    s->connect("inproc://beta");
  }
  std::vector<message> run_got, type_got;
  // Subscriptions reach a PUB asynchronously: publish warm-up errors until both filters pass them.
  REQUIRE(wait_reading(
      {&by_run, &by_type}, {&run_got, &type_got},
      [&] { return has(run_got, "alpha", event_type::error) && has(type_got, "alpha", event_type::error) &&
                   has(type_got, "beta", event_type::error); },
      [&] {
        alpha.emit_error("warm-up");
        beta.emit_error("warm-up");
        alpha.flush();
        beta.flush();
      }));

  // The measured phase: seqs are handed out in emit order, so the next one is emitted + generated.
  const auto next_seq = [](const training_event_emitter& e) {
    const emitter_stats s = e.stats();
    return s.emitted + s.generated;
  };
  const std::uint64_t alpha_first = next_seq(alpha);
  std::set<std::uint64_t> alpha_all;
  std::set<std::pair<std::string, std::uint64_t>> errors;
  for (int i = 0; i < 1000; ++i) {
    for (auto* e : {&alpha, &beta}) {
      const std::uint64_t seq = next_seq(*e);
      const bool error = i % 10 == 3;
      error ? e->emit_error("boom " + std::to_string(i), "ValueError") : e->emit_progress("train", i / 10.0);
      if (e == &alpha) alpha_all.insert(seq);
      if (error) errors.insert({e == &alpha ? "alpha" : "beta", seq});
    }
  }
  for (auto* e : {&alpha, &beta}) {
    const std::uint64_t seq = next_seq(*e);
    e->emit_error("end", "marker", false);
    if (e == &alpha) alpha_all.insert(seq);
    errors.insert({e == &alpha ? "alpha" : "beta", seq});
    REQUIRE(e->flush(std::chrono::seconds(10)).ok());
  }
  REQUIRE(wait_reading(
      {&by_run, &by_type}, {&run_got, &type_got},
      [&] {
        std::size_t run_n = 0, type_n = 0;
        for (const auto& m : run_got) run_n += m.value.seq >= alpha_first;
        for (const auto& m : type_got) type_n += errors.count({m.value.run_id, m.value.seq});
        return run_n >= alpha_all.size() && type_n >= errors.size();
      },
      [] {}));

  std::set<std::uint64_t> run_seqs;
  for (const auto& m : run_got) {
    CHECK(m.value.run_id == "alpha");
    if (m.value.seq >= alpha_first) CHECK(run_seqs.insert(m.value.seq).second);
  }
  CHECK(run_seqs == alpha_all);
  std::set<std::pair<std::string, std::uint64_t>> error_seqs;
  for (const auto& m : type_got) {
    CHECK(m.value.type == event_type::error);
    if (m.value.error_message != "warm-up") CHECK(error_seqs.insert({m.value.run_id, m.value.seq}).second);
  }
  CHECK(error_seqs == errors);
  CHECK(alpha.stats().dropped() == 0);
}

TEST_CASE("acceptance: what the high-water mark refuses is counted and reported in a dropped event") {
  zmq::context_t ctx;
  emitter_options options;
  options.queue_capacity = 1u << 14;
  training_event_emitter emitter("hwm", pub(ctx, "inproc://hwm", 10), options);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 10);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect("inproc://hwm");
  std::vector<message> got;
  REQUIRE(wait_reading({&sub}, {&got}, [&] { return !got.empty(); }, [&] {
    emitter.emit_heartbeat();
    emitter.flush();
  }));
  const std::uint64_t first = got.front().value.seq;

  for (int i = 0; i < 5000; ++i) emitter.emit_progress("train", i / 50.0);  // nobody reads now
  REQUIRE(emitter.flush(std::chrono::seconds(10)).ok());
  CHECK(emitter.stats().dropped_sink > 0);
  // Read again; a drop report refused in its turn is counted in the next one, so one arrives.
  REQUIRE(wait_reading({&sub}, {&got}, [&] { return has(got, "hwm", event_type::dropped); },
                       [&] { emitter.flush(); }));
  std::uint64_t reported = 0;
  for (const auto& m : got) {
    if (m.value.type == event_type::dropped) reported += static_cast<std::uint64_t>(m.value.count.value_or(0));
  }
  CHECK(reported > 0);
  REQUIRE(emitter.close(std::chrono::seconds(10)).ok());
  drain(sub, got);
  // Every seq from the first one received on was either received or counted as refused.
  std::set<std::uint64_t> seen;
  for (const auto& m : got) CHECK(seen.insert(m.value.seq).second);
  const emitter_stats stats = emitter.stats();
  CHECK(stats.dropped_queue_full == 0);
  CHECK(seen.size() + stats.dropped_sink == stats.emitted + stats.generated - first);
}

TEST_CASE("ZeroMQ URIs build sinks once the component is enabled, and errors name the endpoint") {
  temp_dir dir;
  const std::string uri = "zmq+ipc://" + (dir / "events.ipc");
  // Linking the component is not enough: enable_zmq_sink_uris() is the one way to turn them on.
  register_zmq_sink_factory(nullptr);
  CHECK_THROWS_WITH_AS(make_sink(uri), doctest::Contains("enable_zmq_sink_uris"), std::invalid_argument);
  enable_zmq_sink_uris();
  auto s = make_sink(uri);
  CHECK(s->describe() == "zmq+ipc://" + (dir / "events.ipc") + "?bind=1");
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, zmq_type_subscription(event_type::log));
  sub.connect("ipc://" + (dir / "events.ipc"));
  training_event_emitter emitter("ipc", std::move(s));
  std::vector<message> got;
  REQUIRE(wait_reading({&sub}, {&got}, [&] { return !got.empty(); }, [&] {
    emitter.emit_log("info", "hello");
    emitter.flush();
  }));
  CHECK(got.front().value.type == event_type::log);
  // A second bind of the same endpoint fails when the sink is created, naming it.
  auto first = make_sink("inproc://taken");
  CHECK_THROWS_WITH_AS(make_sink("inproc://taken"), doctest::Contains("inproc://taken"), std::system_error);
}

TEST_CASE("the command endpoint rule: port + 1, ipc path + .commands, or ?commands=") {
  CHECK(zmq_command_endpoint("tcp://host:5556") == "tcp://host:5557");
  CHECK(zmq_command_endpoint("tcp://[::1]:7000") == "tcp://[::1]:7001");
  CHECK(zmq_command_endpoint("tcp://*:*") == "tcp://*:*");
  CHECK(zmq_command_endpoint("ipc:///r/ev") == "ipc:///r/ev.commands");
  CHECK(zmq_command_endpoint("inproc://ev") == "inproc://ev.commands");
  CHECK_THROWS_AS(zmq_command_endpoint("tcp://host:65535"), std::invalid_argument);
  CHECK_THROWS_AS(zmq_command_endpoint("tcp://host"), std::invalid_argument);
  CHECK_THROWS_AS(zmq_command_endpoint("pgm://x"), std::invalid_argument);
  CHECK(zmq_command_topic("run1") == "run1\x1f");
  CHECK(parse_sink_uri("zmq+tcp://proxy:5556").zmq_command_endpoint() == "tcp://proxy:5557");
  CHECK(parse_sink_uri("zmq+tcp://proxy:5556?commands=tcp%3A%2F%2Fother%3A9000").zmq_command_endpoint() ==
        "tcp://other:9000");
  CHECK(parse_sink_uri("zmq+ipc:///r/ev?bind=1&commands=ipc%3A%2F%2F%2Fr%2Fc").zmq_command_endpoint() == "ipc:///r/c");
  CHECK_THROWS_AS(parse_sink_uri("zmq+tcp://proxy:5556?commands="), std::invalid_argument);
}

TEST_CASE("a command published on the command endpoint reaches the emitter, once per id") {
  zmq::context_t ctx;
  zmq_sink_options o;
  o.endpoint = "inproc://ctl-events";
  o.context = &ctx;
  auto owned = std::make_unique<zmq_sink>(o);
  CHECK(owned->command_endpoint() == "inproc://ctl-events.commands");
  emitter_options eo;
  eo.control_endpoint = control_endpoint_mode::off;
  training_event_emitter emitter("zrun", std::move(owned), eo);

  zmq::socket_t events(ctx, zmq::socket_type::sub);
  events.set(zmq::sockopt::subscribe, zmq_topic(event_type::command_received, "zrun"));
  events.connect("inproc://ctl-events");
  zmq::socket_t sender(ctx, zmq::socket_type::pub);
  sender.connect("inproc://ctl-events.commands");
  const auto send = [&](const std::string& run, const std::string& body) {
    const std::string topic = zmq_command_topic(run);
    sender.send(zmq::const_buffer(topic.data(), topic.size()), zmq::send_flags::sndmore);
    sender.send(zmq::const_buffer(body.data(), body.size()), zmq::send_flags::none);
  };
  const std::string cancel = "{\"command\":\"cancel\",\"id\":\"z1\",\"run_id\":\"zrun\",\"sender\":\"u@h:1\"}";
  std::vector<message> got;
  // PUB/SUB joins late: resend the same id until command_received comes back, as senders do.
  REQUIRE(wait_reading({&events}, {&got}, [&] { return !got.empty(); }, [&] {
    send("other", "{\"command\":\"cancel\",\"id\":\"o1\",\"run_id\":\"other\"}");  // filtered by topic
    send("zrun", cancel);
    emitter.emit_heartbeat();
  }));
  CHECK(got.front().value.command_id == "z1");
  CHECK(got.front().value.sender == "u@h:1");
  CHECK(emitter.should_stop());
  REQUIRE(emitter.poll_command());
  CHECK_FALSE(emitter.poll_command());  // the resends were duplicates
  emitter.flush();
  CHECK(emitter.stats().commands_received == 1);
  CHECK(emitter.stats().commands_refused == 0);  // the other run's never reached it
  REQUIRE(emitter.close().ok());
  drain(events, got);
  CHECK(got.size() == 1);
}
