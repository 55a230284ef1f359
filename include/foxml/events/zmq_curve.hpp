#pragma once
/// CURVE keys for the ZeroMQ paths (component foxml::events_zmq): the one place that reads and
/// writes key files and puts CURVE options on a socket. Keys are ZeroMQ's Z85 text (40
/// characters for 32 bytes). A key file holds a keypair as two lines, a subset of zcert's format:
///     public-key = "<z85>"
///     secret-key = "<z85>"
/// It must be readable by its owner only (0600, as write_curve_key_file() creates it). A public-key
/// file holds the `public-key` line only (or the bare Z85 key).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "foxml/events/sink_uri.hpp"  // curve_settings

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace foxml::events {

/// A CURVE keypair, both halves in Z85.
struct curve_keypair {
  std::string public_key;
  std::string secret_key;
};

/// Returns a new keypair (zmq_curve_keypair). Throws std::runtime_error when libzmq has no CURVE.
curve_keypair curve_generate_keypair();

/// Writes `keys` to a new file at `path`, created 0600 (an existing file is not replaced).
/// Throws std::runtime_error naming the path.
void write_curve_key_file(const std::string& path, const curve_keypair& keys);

/// Reads a key file. Throws std::runtime_error naming the path when it cannot be read, is readable
/// by group or others, or does not hold two valid Z85 keys that belong together.
curve_keypair read_curve_key_file(const std::string& path);

/// Returns a public key given as Z85 text (40 characters) or as the path of a public-key file
/// (or of a key file: its public half); a file of that name wins over the Z85 reading. Throws
/// std::runtime_error.
std::string read_curve_public_key(const std::string& z85_or_path);

/// Returns the public keys in a file (one per line, bare Z85 or `public-key = "..."`; blank lines
/// and `#` comments skipped) or in the `*.pub` files of a directory. Throws std::runtime_error
/// for a line that is not a key, or when there is no key at all.
std::vector<std::string> read_curve_authorized(const std::string& file_or_directory);

/// Puts CURVE options on a socket that connects: the server's key plus this side's keypair.
/// Nothing when `settings` is empty; std::invalid_argument when only one of the two is given;
/// std::runtime_error for a bad key file. Call before connect().
void apply_curve_client(zmq::socket_t& socket, const curve_settings& settings);

/// Makes a socket that binds a CURVE server with this keypair (call before bind()). Which clients
/// get in is for a ZAP handler (curve_authorizer) to say; without one, any client that knows the
/// server's public key does: the traffic is encrypted, not restricted.
void apply_curve_server(zmq::socket_t& socket, const curve_keypair& keys);

/// A ZAP handler (ZeroMQ RFC 27) on `inproc://zeromq.zap.01` of a context: admits the CURVE clients
/// whose public key is listed and refuses the others, counting both. Construct it before any
/// CURVE server socket of the context binds: a context without a handler admits every client.
class curve_authorizer {
 public:
  /// `authorized`: Z85 public keys; `any_client`: admit every key (encryption only).
  curve_authorizer(zmq::context_t& context, std::vector<std::string> authorized, bool any_client = false);
  ~curve_authorizer();  ///< stops the handler thread
  curve_authorizer(const curve_authorizer&) = delete;
  curve_authorizer& operator=(const curve_authorizer&) = delete;

  std::uint64_t admitted() const noexcept;
  std::uint64_t refused() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace foxml::events
