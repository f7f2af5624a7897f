// The service manager's readiness protocol (sd_notify(3)) without libsystemd: when systemd starts the
// broker with Type=notify (or notify-reload) it sets NOTIFY_SOCKET, and the broker says READY=1 once its
// listeners are bound, RELOADING=1 ... READY=1 around a SIGHUP reload, and STOPPING=1 on shutdown.
// Without NOTIFY_SOCKET every call does nothing.
#pragma once

#include <string_view>

namespace bulwark::service {

// Sends one state string ("READY=1\nSTATUS=..."); false when there is no manager or it failed.
bool notify(std::string_view state);
// RELOADING=1 with the MONOTONIC_USEC systemd's notify-reload wants.
bool notify_reloading();

}  // namespace bulwark::service
