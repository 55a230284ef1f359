#pragma once
/// foxml-events: structured events from training jobs. Include this for everything in the core
/// (target foxml::events): the emitter, every sink that needs no libzmq, sink URIs, the ZeroMQ
/// topic helpers and decoding. The ZeroMQ sink (foxml::events_zmq) and the reader
/// (foxml::events_reader) have headers of their own: foxml/events/zmq_sink.hpp, foxml/events/reader/.

#include "foxml/events/codec.hpp"
#include "foxml/events/composite_sink.hpp"
#include "foxml/events/control.hpp"
#include "foxml/events/defaults.hpp"
#include "foxml/events/emitter.hpp"
#include "foxml/events/event.hpp"
#include "foxml/events/fallback_sink.hpp"
#include "foxml/events/identity.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/memory_sink.hpp"
#include "foxml/events/options.hpp"
#include "foxml/events/resources.hpp"
#include "foxml/events/schema.hpp"
#include "foxml/events/schema_keys.hpp"
#include "foxml/events/signals.hpp"
#include "foxml/events/sink.hpp"
#include "foxml/events/sink_uri.hpp"
#include "foxml/events/tee_sink.hpp"
#include "foxml/events/unix_socket_sink.hpp"
#include "foxml/events/version.hpp"
#include "foxml/events/zmq_topic.hpp"
