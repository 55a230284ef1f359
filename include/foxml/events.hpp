#pragma once
/// foxml-events: structured events from training jobs. Include this for everything in the core.

#include "foxml/events/codec.hpp"
#include "foxml/events/defaults.hpp"
#include "foxml/events/emitter.hpp"
#include "foxml/events/event.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/memory_sink.hpp"
#include "foxml/events/options.hpp"
#include "foxml/events/resources.hpp"
#include "foxml/events/schema.hpp"
#include "foxml/events/signals.hpp"
#include "foxml/events/sink.hpp"
#include "foxml/events/version.hpp"
