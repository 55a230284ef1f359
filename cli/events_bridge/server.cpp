#include "server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "api.hpp"
#include "assets.hpp"
#include "query.hpp"
#include "ws_session.hpp"
#include "foxml/events/schema_keys.hpp"

namespace events_bridge {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
namespace fr = foxml::events::reader;
namespace names = foxml::events::schema::names;  // wire keys, spelled once

namespace {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

const asset* find_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const auto& a : assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

// Without a token the server only answers requests addressed to a loopback name, so a page that
// rebinds its own DNS name to 127.0.0.1 cannot read the API.
bool loopback_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    const auto close = host.find(']');
    return close != std::string_view::npos && host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host == "127.0.0.1" || host.rfind("127.", 0) == 0;
}

std::optional<ws_params> parse_ws_params(const target& t, std::string& error) {
  ws_params p;
  if (auto it = t.query.find("since"); it != t.query.end()) {
    p.since = parse_count(it->second);
    if (!p.since) {
      error = "since must be a cursor (a whole number)";
      return std::nullopt;
    }
  }
  if (auto it = t.query.find("types"); it != t.query.end()) {
    for (const auto& name : split_list(it->second)) {
      const auto type = foxml::events::parse_event_type(name);
      if (!type) {
        error = "unknown event type: " + name;
        return std::nullopt;
      }
      p.types.insert(*type);
    }
  }
  if (auto it = t.query.find("run"); it != t.query.end()) p.run = it->second;
  if (auto it = t.query.find("max_hz"); it != t.query.end()) {
    char* end = nullptr;
    const double hz = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || end != it->second.c_str() + it->second.size() || !(hz > 0) || hz > 1e6) {
      error = "max_hz must be a number above 0";
      return std::nullopt;
    }
    p.max_hz = hz;
  }
  return p;
}

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(server& owner, tcp::socket socket) : owner_(owner), stream_(std::move(socket)) {}

  void run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(defaults::max_header_bytes);
    parser_->body_limit(defaults::max_body_bytes);
    stream_.expires_after(defaults::http_idle);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      close();
      return;
    }
    if (ec) {
      owner_.counters().http_requests += 1;
      const unsigned status = ec == http::error::body_limit ? 413 : ec == http::error::header_limit ? 431 : 400;
      const std::string why = status == 413   ? fmt::format("request body over {} bytes", defaults::max_body_bytes)
                              : status == 431 ? fmt::format("request header over {} bytes", defaults::max_header_bytes)
                                              : "malformed request: " + ec.message();
      respond_raw(error_reply(status, why), 11, false);
      return;
    }
    handle(parser_->release());
  }

  // The token, when one is configured, from the Authorization header, the query or the cookie.
  enum class credential { none, header_or_query, cookie };
  credential credential_of(const request& req, const target& t) const {
    const std::string& token = owner_.options().token;
    if (token.empty()) return credential::none;
    const auto auth = req[http::field::authorization];
    if (auth.size() > 7 && auth.substr(0, 7) == "Bearer " && same_secret(auth.substr(7), token)) {
      return credential::header_or_query;
    }
    if (auto it = t.query.find("token"); it != t.query.end() && same_secret(it->second, token)) {
      return credential::header_or_query;
    }
    if (auto value = cookie_value(req[http::field::cookie], "foxml_token"); value && same_secret(*value, token)) {
      return credential::cookie;
    }
    return credential::none;
  }

  void handle(request req) {
    owner_.counters().http_requests += 1;
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    auto t = parse_target(std::string_view(req.target().data(), req.target().size()));
    if (!t) return respond(req, error_reply(400, "bad request target"));
    const bool has_token = !owner_.options().token.empty();
    const credential cred = credential_of(req, *t);
    if (!has_token && !loopback_host(std::string_view(req[http::field::host].data(), req[http::field::host].size()))) {
      return respond(req, error_reply(403, "this bridge answers only requests to a loopback host name "
                                           "(start it with --token to serve others)"));
    }
    if (has_token && cred == credential::none) {
      return respond(req, error_reply(401, "missing or wrong token (Authorization: Bearer T, ?token=T or the "
                                           "foxml_token cookie)"));
    }
    if (websocket::is_upgrade(req)) {
      if (t->path != "/ws/training") return respond(req, error_reply(404, "no WebSocket at " + t->path));
      std::string error;
      auto params = parse_ws_params(*t, error);
      if (!params) return respond(req, error_reply(400, error));
      stream_.expires_never();
      auto session = std::make_shared<ws_session>(owner_, stream_.release_socket(), std::move(*params));
      session->run(std::move(req));
      return;
    }
    (void)version;
    (void)keep_alive;
    route(std::move(req), *t, cred);
  }

  void route(request req, const target& t, credential cred) {
    const auto method = req.method();
    const bool get = method == http::verb::get || method == http::verb::head;
    const auto only = [&](const char* allowed, bool ok, auto&& make) {
      if (!ok) {
        reply r = error_reply(405, fmt::format("{} allows {}", t.path, allowed));
        return respond(req, std::move(r), allowed);
      }
      return respond(req, make());
    };
    const std::string& path = t.path;
    if (path == "/api/runs") return only("GET, HEAD", get, [&] { return runs_reply(owner_); });
    if (path == "/api/training/status") return only("GET, HEAD", get, [&] { return training_status_reply(owner_); });
    if (path == "/api/health") return only("GET, HEAD", get, [&] { return health_reply(owner_); });
    if (path == "/metrics") return only("GET, HEAD", get, [&] { return metrics_reply(owner_); });
    const std::string runs_prefix = "/api/runs/";
    if (path.rfind(runs_prefix, 0) == 0 && path.size() > runs_prefix.size()) {
      std::string id = path.substr(runs_prefix.size());
      const auto strip = [&id](std::string_view suffix) {
        if (id.size() > suffix.size() && id.compare(id.size() - suffix.size(), suffix.size(), suffix) == 0) {
          id.resize(id.size() - suffix.size());
          return true;
        }
        return false;
      };
      if (strip("/events")) return only("GET, HEAD", get, [&] { return run_events_reply(owner_, id, t); });
      if (strip("/commands")) {
        if (method != http::verb::post) return respond(req, error_reply(405, path + " allows POST"), "POST");
        return command(std::move(req), id, cred);
      }
      return only("GET, HEAD", get, [&] { return run_reply(owner_, id); });
    }
    if (const asset* a = find_asset(path)) {
      if (!get) return respond(req, error_reply(405, path + " allows GET, HEAD"), "GET, HEAD");
      return respond_asset(req, *a, t);
    }
    respond(req, error_reply(404, "not found: " + path));
  }

  // POST /api/runs/{id}/commands: checked here, sent from a worker thread (it waits for the
  // trainer), answered back on the io thread.
  void command(request req, const std::string& run_id, credential cred) {
    const std::string& token = owner_.options().token;
    if (token.empty() || cred == credential::cookie) {
      // Same-origin only: a custom header no cross-site form or simple request can set, and an
      // Origin (when the browser sends one) naming this server.
      if (req["X-Foxml-Events"] != "1") {
        return respond(req, error_reply(403, "POST needs the header X-Foxml-Events: 1 (or the token)"));
      }
      const auto origin = req[http::field::origin];
      if (!origin.empty() && std::string(origin) != "http://" + std::string(req[http::field::host])) {
        return respond(req, error_reply(403, "cross-origin POST refused"));
      }
    }
    const auto body = nlohmann::json::parse(req.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object()) return respond(req, error_reply(400, "the body must be a JSON object"));
    const auto name = body.find(std::string(names::command));
    if (name == body.end() || !name->is_string() || name->get<std::string>().empty()) {
      return respond(req, error_reply(400, fmt::format("the body needs \"{}\": a non-empty string", names::command)));
    }
    std::string arg;
    if (auto a = body.find(std::string(names::arg)); a != body.end() && !a->is_null()) {
      if (!a->is_object()) return respond(req, error_reply(400, fmt::format("\"{}\" must be a JSON object", names::arg)));
      arg = a->dump();
    }
    const auto run = owner_.reader().run(run_id);
    if (!run) return respond(req, error_reply(404, "unknown run: " + run_id));
    if (!run->running()) return respond(req, error_reply(409, "run " + run_id + " has already ended"));
    if (owner_.pending_commands().fetch_add(1) >= defaults::max_pending_commands) {
      owner_.pending_commands() -= 1;
      return respond(req, error_reply(503, "too many commands waiting for an answer; try again"));
    }
    owner_.counters().commands += 1;
    // The executor is taken here, on the io thread: the worker touches nothing of the stream.
    std::thread([self = shared_from_this(), executor = stream_.get_executor(), req = std::move(req), run_id,
                 command = name->get<std::string>(), arg = std::move(arg)]() mutable {
      reply r = self->send(run_id, command, arg);
      server& owner = self->owner_;
      asio::post(executor, [self = std::move(self), req = std::move(req), r = std::move(r)]() mutable {
        self->respond(req, std::move(r));
      });
      owner.pending_commands() -= 1;  // last: the server waits for this before it goes away
    }).detach();
  }

  reply send(const std::string& run_id, const std::string& command, const std::string& arg) {
    fr::command_result result;
    try {
      result = owner_.reader().send_command(run_id, command, arg, owner_.options().command_timeout);
    } catch (const std::invalid_argument& e) {
      return error_reply(400, e.what());
    } catch (const std::exception& e) {
      return error_reply(502, e.what());
    }
    nlohmann::ordered_json out = {{"ok", result.ok},
                                  {"acknowledged", result.acknowledged},
                                  {"duplicate", result.duplicate},
                                  {"id", result.id},
                                  {"via", result.via},
                                  {"delivered", result.delivered}};
    nlohmann::ordered_json received = nlohmann::ordered_json::array();
    for (const auto& line : result.received) {
      auto one = nlohmann::ordered_json::parse(line, nullptr, false);
      if (!one.is_discarded()) received.push_back(std::move(one));
    }
    out["received"] = std::move(received);
    if (!result.error.empty()) out["error"] = result.error;
    unsigned status = 200;
    if (result.unknown_run) {
      status = 404;
    } else if (!result.ok) {
      // A control endpoint that never answered is a timeout too (commands.cpp words it so).
      status = result.error.find("no answer in time") != std::string::npos ? 504 : 502;
    } else if (!result.acknowledged) {
      status = 504;
      if (result.error.empty()) out["error"] = "the trainer did not acknowledge the command in time";
    }
    return {status, out.dump()};
  }

  void respond_asset(const request& req, const asset& a, const target& t) {
    auto res = std::make_shared<response>(http::status::ok, req.version());
    res->set(http::field::server, "events-bridge");
    res->set(http::field::etag, std::string(a.etag));
    res->set(http::field::cache_control, "no-cache");
    res->set("X-Content-Type-Options", "nosniff");
    // Opened as /?token=T: the page's own requests then carry the token in a cookie.
    if (auto it = t.query.find("token"); it != t.query.end() && !owner_.options().token.empty()) {
      res->set(http::field::set_cookie, "foxml_token=" + it->second + "; Path=/; HttpOnly; SameSite=Strict");
    }
    if (req[http::field::if_none_match] == a.etag) {
      res->result(http::status::not_modified);
    } else {
      res->set(http::field::content_type, std::string(a.content_type));
      if (req.method() != http::verb::head) res->body() = std::string(a.body);
    }
    res->content_length(a.body.size());
    if (res->result() == http::status::not_modified) res->content_length(0);
    res->keep_alive(req.keep_alive());
    write(std::move(res));
  }

  void respond(const request& req, reply r, const char* allow = nullptr) {
    auto res = std::make_shared<response>(static_cast<http::status>(r.status), req.version());
    res->set(http::field::server, "events-bridge");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    if (allow != nullptr) res->set(http::field::allow, allow);
    if (r.status >= 400) owner_.counters().http_errors += 1;
    const std::size_t size = r.body.size();
    if (req.method() != http::verb::head) res->body() = std::move(r.body);
    res->content_length(size);
    res->keep_alive(req.keep_alive());
    write(std::move(res));
  }

  // An answer to a request that could not be parsed: the connection closes after it.
  void respond_raw(reply r, unsigned version, bool keep_alive) {
    owner_.counters().http_errors += 1;
    auto res = std::make_shared<response>(static_cast<http::status>(r.status), version);
    res->set(http::field::server, "events-bridge");
    res->set(http::field::content_type, r.content_type);
    res->body() = std::move(r.body);
    res->prepare_payload();
    res->keep_alive(keep_alive);
    write(std::move(res));
  }

  void write(std::shared_ptr<response> res) {
    stream_.expires_after(defaults::http_idle);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) {
        self->close();
        return;
      }
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  server& owner_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

server::server(asio::io_context& io, fr::live_reader& reader, server_options options)
    : io_(io), reader_(reader), options_(std::move(options)), acceptor_(io) {
  const auto address = asio::ip::make_address(options_.host == "localhost" ? "127.0.0.1" : options_.host);
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  // The pump only posts a wake-up (at most one outstanding): it never waits on a client.
  subscription_ = reader_.subscribe([this](const fr::shared_event&, std::uint64_t) {
    events_seen_.fetch_add(1, std::memory_order_relaxed);
    if (!wake_posted_.exchange(true)) {
      asio::post(io_, [this] {
        wake_posted_ = false;
        on_events();
      });
    }
  });
}

server::~server() { reader_.unsubscribe(subscription_); }

std::uint16_t server::port() const { return acceptor_.local_endpoint().port(); }

void server::start() {
  accept();
  sample_rate();
}

void server::stop() {
  asio::post(io_, [this] {
    stopped_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    rate_timer_.cancel();
    const auto all = sessions_;
    for (const auto& s : all) s->shutdown();
  });
}

void server::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) std::make_shared<http_session>(*this, std::move(socket))->run();
    accept();
  });
}

void server::add(const std::shared_ptr<ws_session>& session) {
  sessions_.insert(session);
  counters_.ws_connections += 1;
  counters_.ws_clients = sessions_.size();
}

void server::remove(const std::shared_ptr<ws_session>& session) {
  sessions_.erase(session);
  counters_.ws_clients = sessions_.size();
}

void server::on_events() {
  const auto all = sessions_;  // a session may remove itself while reading
  for (const auto& s : all) s->pump();
}

void server::sample_rate() {
  // Events per second over the last few seconds, sampled once a second on the io thread.
  const auto now = std::chrono::steady_clock::now();
  rate_samples_.emplace_back(now, events_seen_.load(std::memory_order_relaxed));
  while (rate_samples_.size() > 6) rate_samples_.pop_front();
  const auto& [t0, n0] = rate_samples_.front();
  const double seconds = std::chrono::duration<double>(now - t0).count();
  rate_ = seconds > 0 ? static_cast<double>(events_seen_.load() - n0) / seconds : 0.0;
  rate_timer_.expires_after(std::chrono::seconds(1));
  rate_timer_.async_wait([this](beast::error_code ec) {
    if (!ec && !stopped_) sample_rate();
  });
}

double server::events_per_s() const { return rate_.load(); }

}  // namespace events_bridge
