#pragma once
/// events-bridge's defaults, defined once (the CLI's help and the server read them from here).

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace events_bridge::defaults {

inline constexpr const char* host = "127.0.0.1";
inline constexpr std::uint16_t port = 8765;
/// Messages a WebSocket client may have queued (unsent) before it is disconnected as too slow.
inline constexpr std::size_t client_queue = 8192;
/// Events a WebSocket client without `?since=` gets first (seed 004's late-joiner buffer).
inline constexpr std::size_t ws_history = 100;
/// Points per metric and resource series in `/api/runs/{id}`.
inline constexpr std::size_t max_points = 500;
/// Events the reader's ring keeps (what `?since=` can resume from).
inline constexpr std::size_t ring_size = 10000;
/// Silence after which a WebSocket client gets `{"type":"ping"}` (seed 004's interval).
inline constexpr std::chrono::seconds ping_after{5};
/// Request limits: a larger header gets 431, a larger body 413.
inline constexpr std::size_t max_header_bytes = 8 * 1024;
inline constexpr std::size_t max_body_bytes = 64 * 1024;
/// Frames a client sends larger than this close its WebSocket with 1009.
inline constexpr std::size_t max_frame_bytes = 4 * 1024;
/// An HTTP connection idle this long is closed (a half-sent request holds nothing for longer).
inline constexpr std::chrono::seconds http_idle{30};
/// How long POST .../commands waits for the trainer's acknowledgement before answering 504.
inline constexpr std::chrono::seconds command_timeout{5};
/// Commands waiting for their acknowledgement at once; more get 503.
inline constexpr std::size_t max_pending_commands = 8;
/// Events per page of `/api/runs/{id}/events` when `limit` is not given, and the most a page holds.
inline constexpr std::size_t events_page = 1000;
/// Kernel send buffer per WebSocket (bounds what a stalled client holds beyond its queue).
inline constexpr int socket_send_buffer = 256 * 1024;
/// A slow client's queued write gets this long to finish before its socket is closed outright.
inline constexpr std::chrono::seconds close_grace{2};

}  // namespace events_bridge::defaults
