// The TLS material of this node's listeners, and of its clients to the other nodes, kept current while
// the broker runs (Kafka's KIP-226). A listener's keystore, truststore and CRL are read again:
//   - on SIGHUP (reload_all),
//   - when one of their files changes: inotify watches each file and its directory, so rename-style
//     rotation and Kubernetes secret updates (a swapped ..data link) are seen too,
//   - when the dynamic listener.name.<l>.ssl.* configs change (apply_dynamic: AlterConfigs).
// New handshakes get the new material and open connections keep theirs. A reload that fails Kafka's
// checks (tls::check_replacement), or finds our certificate expired or not yet valid, keeps the old
// material in force and logs why. Every reload logs the old and new serial and the new expiry. The
// same thread checks every certificate's expiry each hour.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "tls/tls.h"

namespace bulwark::broker {

// The TLS settings of one listener from its effective ssl.* settings (listener.name.<l>. prefixes
// applied): keystore, truststore and CRL files read, or their PEM given inline (KIP-651).
Result<tls::TlsSettings> listener_tls_settings(const config::ListenerSecurity& security);

// Whether two listener settings name the same TLS material (files, types, passwords, inline PEM, CRL).
bool same_tls_settings(const config::ListenerSecurity& a, const config::ListenerSecurity& b);

class TlsReloader {
 public:
  struct Options {
    const config::BrokerConfig* config = nullptr;  // outlives the reloader
    std::chrono::milliseconds settle{250};  // quiet time after a file event before the files are read
    std::chrono::milliseconds expiry_check_interval{std::chrono::hours(1)};
  };
  // Builds the context of every TLS listener. Refuses a certificate of ours that is expired or not yet
  // valid, and logs a warning for anything that expires within the warning days.
  static Result<std::unique_ptr<TlsReloader>> create(Options options);
  ~TlsReloader();

  // The server context of a TLS listener of this node (null for the others).
  std::shared_ptr<tls::ServerTlsContext> server_context(const std::string& listener) const;
  // The client context this node dials `listener` on the other nodes with: that listener's keystore is
  // the client certificate and its truststore verifies them. Reloaded with the listener.
  Result<std::shared_ptr<tls::ClientTlsContext>> client_context(const std::string& listener);

  void start();  // the watching (and hourly expiry-checking) thread
  void stop();

  // Reads every listener's material again; `reason` (e.g. "SIGHUP") goes into the log lines.
  void reload_all(std::string_view reason);
  // Whether `security` would be accepted for its listener (its files load and pass every reload check),
  // without using it: a dynamic config change is checked so before it is stored.
  Status validate(const config::ListenerSecurity& security) const;
  // The dynamic configs in force changed: each listener whose TLS settings they change is reloaded
  // with them (a refused one keeps its material, and says why).
  void apply_dynamic(const config::DynamicConfigs* cluster_default, const config::DynamicConfigs* this_broker);
  // Every certificate in force: each listener's own ("keystore", then its chain's CAs as "chain") and
  // its trusted CAs ("truststore"), for the expiry metrics.
  struct CertificateInForce {
    std::string listener, role, subject, serial;
    std::int64_t not_after = 0;
  };
  std::vector<CertificateInForce> certificates() const;
  // The effective security in force for `listener` (DescribeConfigs), if it is a TLS listener of ours.
  std::optional<config::ListenerSecurity> security(const std::string& listener) const;

 private:
  struct Impl;
  explicit TlsReloader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::broker
