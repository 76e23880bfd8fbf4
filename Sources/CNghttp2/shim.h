#ifndef PINHOLE_CNGHTTP2_SHIM_H
#define PINHOLE_CNGHTTP2_SHIM_H

// libnghttp2 as Debian bookworm ships it (1.52). The *2 / nghttp2_ssize
// variants arrived in 1.60, so the wrapper uses the 1.52 API only.
#include <nghttp2/nghttp2.h>

#endif
