#include "broker/tls_reloader.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "base/files.h"
#include "base/log.h"
#include "security/keystore.h"
#include "tls/certificates.h"

namespace bulwark::broker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

tls::ClientAuth to_tls(config::ClientAuth a) {
  switch (a) {
    case config::ClientAuth::none: return tls::ClientAuth::none;
    case config::ClientAuth::requested: return tls::ClientAuth::requested;
    case config::ClientAuth::required: return tls::ClientAuth::required;
  }
  return tls::ClientAuth::none;
}

Result<std::optional<keystore::Format>> store_format(const std::string& type) {
  if (type.empty()) return std::optional<keystore::Format>{};
  auto format = keystore::parse_format(type);
  if (!format.ok()) return format.error();
  return std::optional<keystore::Format>{*format};
}

std::int64_t wall_clock() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::vector<fs::path> files_of(const config::ListenerSecurity& s) {
  std::vector<fs::path> files;
  for (const auto& file : {s.keystore_location, s.truststore_location, s.crl_location})
    if (!file.empty()) files.emplace_back(file);
  return files;
}

// What the files hold now; a reload from a file event happens only when this changed.
std::size_t fingerprint(const config::ListenerSecurity& s) {
  std::size_t hash = 0;
  for (const auto& file : files_of(s)) {
    auto bytes = read_file(file);
    const std::size_t h = bytes.ok() ? std::hash<std::string>{}(*bytes) : 0x9e3779b9u;
    hash = hash * 31 + h;
  }
  return hash;
}

// "serial 1A2B, valid until 2027-12-01 17:00 UTC" for the certificate a settings serves.
std::string describe_certificate(const tls::TlsSettings* settings) {
  const X509* leaf = settings != nullptr ? tls::served_certificate(*settings) : nullptr;
  if (leaf == nullptr) return "no certificate";
  const auto facts = tls::certificate_facts(leaf);
  return fmt::format("serial {}, valid until {}", facts.serial, tls::format_utc(facts.not_after));
}

std::string describe_trust(const tls::TlsSettings& settings) {
  std::size_t revoked = 0;
  for (const auto& crl : settings.crls) revoked += static_cast<std::size_t>(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())));
  std::string out = fmt::format("{} trusted certificate(s)", tls::trust_anchors(settings.truststore).size());
  if (!settings.crls.empty()) out += fmt::format(", {} CRL(s) revoking {} serial(s)", settings.crls.size(), revoked);
  return out;
}

struct Entry {
  config::ListenerSecurity security;
  std::shared_ptr<tls::ServerTlsContext> server;           // when this node serves the listener
  std::shared_ptr<tls::ClientTlsContext> client;           // when this node dials it on the others
  std::shared_ptr<const tls::TlsSettings> client_settings;  // in force for a client-only entry
  tls::ReplacementRules rules;
  std::size_t fingerprint = 0;

  std::shared_ptr<const tls::TlsSettings> in_force() const { return server ? server->settings() : client_settings; }
};

}  // namespace

bool same_tls_settings(const config::ListenerSecurity& a, const config::ListenerSecurity& b) {
  return a.keystore_type == b.keystore_type && a.keystore_location == b.keystore_location &&
         a.keystore_password.reveal() == b.keystore_password.reveal() &&
         a.keystore_key.reveal() == b.keystore_key.reveal() &&
         a.keystore_certificate_chain.reveal() == b.keystore_certificate_chain.reveal() &&
         a.key_password.reveal() == b.key_password.reveal() && a.truststore_type == b.truststore_type &&
         a.truststore_location == b.truststore_location &&
         a.truststore_password.reveal() == b.truststore_password.reveal() &&
         a.truststore_certificates.reveal() == b.truststore_certificates.reveal() && a.crl_location == b.crl_location;
}

Result<tls::TlsSettings> listener_tls_settings(const config::ListenerSecurity& sec) {
  auto where = [&](const Error& e) { return make_error(e.kind, "listener " + sec.listener + ": " + e.message); };
  tls::TlsFileSettings files;
  auto keystore_type = store_format(sec.keystore_type);
  if (!keystore_type.ok()) return where(keystore_type.error());
  auto truststore_type = store_format(sec.truststore_type);
  if (!truststore_type.ok()) return where(truststore_type.error());
  files.keystore_location = sec.keystore_location;
  files.keystore_type = *keystore_type;
  files.keystore_password = sec.keystore_password.reveal();
  files.key_password = sec.key_password.reveal();
  files.truststore_location = sec.truststore_location;
  files.truststore_type = *truststore_type;
  files.truststore_password = sec.truststore_password.reveal();
  files.crl_location = sec.crl_location;
  files.client_auth = to_tls(sec.client_auth);
  if (!sec.enabled_protocols.empty()) files.enabled_protocols = sec.enabled_protocols;
  files.cipher_suites = sec.cipher_suites;
  auto settings = tls::load_tls_settings(files);
  if (!settings.ok()) return where(settings.error());
  // KIP-651: PEM key and chain (and trusted certificates) given inline in the configuration.
  if (!sec.keystore_key.empty()) {
    auto inline_store = keystore::decode_pem(sec.keystore_key.reveal() + "\n" + sec.keystore_certificate_chain.reveal(),
                                             sec.key_password.reveal());
    if (!inline_store.ok()) return where(inline_store.error());
    settings->keystore = std::move(*inline_store);
  }
  if (!sec.truststore_certificates.empty()) {
    auto inline_trust = keystore::decode_pem(sec.truststore_certificates.reveal());
    if (!inline_trust.ok()) return where(inline_trust.error());
    settings->truststore = std::move(*inline_trust);
  }
  return settings;
}

struct TlsReloader::Impl {
  Options options;
  mutable std::mutex mu;
  std::map<std::string, Entry> entries;  // by listener name
  std::thread watcher;
  int wake_fd = -1;
  bool stopping = false;
  bool rewatch = false;  // the files changed by reconfigure: watch them

  const config::BrokerConfig& cfg() const { return *options.config; }

  tls::ReplacementRules rules_for(const config::ListenerSecurity& s) const {
    tls::ReplacementRules rules;
    rules.allow_dn_changes = s.allow_dn_changes;
    rules.allow_san_changes = s.allow_san_changes;
    const auto& names = cfg().controller_listener_names;
    rules.peers_must_verify = s.listener == cfg().inter_broker_listener_name ||
                              std::find(names.begin(), names.end(), s.listener) != names.end();
    return rules;
  }

  // The checks every new material passes, at start-up and on reload: our certificate valid now.
  Status check_new(const std::string& listener, const tls::TlsSettings& next) const {
    for (const auto& finding : tls::check_validity(next, wall_clock(), cfg().ssl_expiry_warning_days)) {
      if (finding.severity == tls::Severity::error) return make_error(ErrorKind::invalid_argument, finding.message);
      log::warn("listener {}: {}", listener, finding.message);
    }
    return Status::success();
  }

  Status build_server(Entry& entry) {
    auto settings = listener_tls_settings(entry.security);
    if (!settings.ok()) return settings.error();
    if (settings->keystore.keys.empty())
      return make_error(ErrorKind::invalid_argument,
                        "listener " + entry.security.listener + " uses TLS but no keystore with a private key is "
                        "configured (set ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain)");
    if (auto valid = check_new(entry.security.listener, *settings); !valid.ok())
      return make_error(ErrorKind::invalid_argument, "listener " + entry.security.listener + ": " + valid.error().message);
    auto context = tls::make_server_context(*settings);
    if (!context.ok())
      return make_error(context.error().kind, "listener " + entry.security.listener + ": " + context.error().message);
    entry.server = std::move(*context);
    return Status::success();
  }

  // The entry's material read from `security`, if it passes every check against what is in force.
  Result<tls::TlsSettings> prepare(const Entry& entry, const config::ListenerSecurity& security) const {
    auto next = listener_tls_settings(security);
    if (!next.ok()) return next.error();
    if (entry.server && next->keystore.keys.empty())
      return make_error(ErrorKind::invalid_argument, "the keystore has no private key entry");
    BULWARK_TRY(check_new(security.listener, *next));
    if (auto in_force = entry.in_force())
      BULWARK_TRY(tls::check_replacement(*in_force, *next, rules_for(security), wall_clock()));
    return next;
  }

  // Reads the entry's material again and swaps it in when it passes the checks. Caller holds mu.
  Status reload(Entry& entry, std::string_view reason) {
    const std::string& name = entry.security.listener;
    entry.fingerprint = fingerprint(entry.security);
    auto in_force = entry.in_force();
    auto refuse = [&](const Error& why) {
      log::error("listener {}: the new TLS material ({}) is not used, and the material in force ({}) stays: {}", name,
                 reason, describe_certificate(in_force.get()), why.message);
      return why;
    };
    auto next = prepare(entry, entry.security);
    if (!next.ok()) return refuse(next.error());
    const std::string before = describe_certificate(in_force.get());
    const std::string after = describe_certificate(&*next);
    const std::string trust = describe_trust(*next);
    if (entry.client) {
      if (auto done = entry.client->reload(*next); !done.ok()) return refuse(done.error());
    }
    if (entry.server) {
      if (auto done = entry.server->reload(*next); !done.ok()) return refuse(done.error());
    } else {
      entry.client_settings = std::make_shared<const tls::TlsSettings>(std::move(*next));
    }
    if (before == after)
      log::info("listener {}: TLS material read again ({}): certificate unchanged ({}); {}", name, reason, after, trust);
    else
      log::info("listener {}: TLS material reloaded ({}): certificate {} replaced by {}; {}", name, reason, before, after,
                trust);
    return Status::success();
  }

  // Points an entry at new settings and reloads it; on failure the old settings stay. Caller holds mu.
  Status reconfigure(Entry& entry, const config::ListenerSecurity& security, std::string_view reason) {
    config::ListenerSecurity previous = entry.security;
    entry.security = security;
    entry.rules = rules_for(security);
    if (auto done = reload(entry, reason); !done.ok()) {
      entry.security = std::move(previous);
      entry.rules = rules_for(entry.security);
      entry.fingerprint = fingerprint(entry.security);
      return done;
    }
    rewatch = true;
    const std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
    return Status::success();
  }

  void reload_changed() {
    std::lock_guard lock(mu);
    for (auto& [name, entry] : entries)
      if (fingerprint(entry.security) != entry.fingerprint) (void)reload(entry, "a watched file changed");
  }

  void check_expiry() {
    std::lock_guard lock(mu);
    for (const auto& [name, entry] : entries) {
      auto in_force = entry.in_force();
      if (!in_force) continue;
      for (const auto& finding : tls::check_validity(*in_force, wall_clock(), cfg().ssl_expiry_warning_days)) {
        if (finding.severity == tls::Severity::error)
          log::error("listener {}: {}; clients cannot connect until it is replaced", name, finding.message);
        else
          log::warn("listener {}: {}", name, finding.message);
      }
    }
  }

  // Watches every file and its directory; directory events count for the files' names and for names
  // starting with ".." (Kubernetes swaps a ..data link when a mounted secret changes).
  struct Watches {
    std::map<int, std::set<std::string>> dir_names;  // directory watch -> file names in it
  };

  Watches add_watches(int fd) const {
    Watches watches;
    std::vector<fs::path> files;
    {
      std::lock_guard lock(mu);
      for (const auto& [name, entry] : entries)
        for (const auto& file : files_of(entry.security)) files.push_back(file);
    }
    for (const auto& file : files) {
      const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
      const int dir_wd = inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB);
      if (dir_wd >= 0) watches.dir_names[dir_wd].insert(file.filename().string());
      // Follows a symlinked file to what it names now; re-added after every reload.
      inotify_add_watch(fd, file.c_str(), IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
    }
    return watches;
  }

  // Whether the events waiting on fd concern a watched file.
  static bool drain(int fd, const Watches& watches) {
    alignas(inotify_event) char buf[8192];
    bool relevant = false;
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t at = 0; at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        auto dir = watches.dir_names.find(event->wd);
        if (dir == watches.dir_names.end() || event->len == 0) {
          relevant = true;  // an event on a watched file itself
          continue;
        }
        const std::string name = event->name;
        if (dir->second.count(name) != 0 || name.rfind("..", 0) == 0) relevant = true;
      }
    }
    return relevant;
  }

  void run() {
    const bool watch = cfg().ssl_reload_on_file_change;
    const int fd = watch ? inotify_init1(IN_NONBLOCK | IN_CLOEXEC) : -1;
    if (watch && fd < 0) log::warn("TLS files are not watched (inotify: {}); SIGHUP still reloads them", std::strerror(errno));
    Watches watches;
    if (fd >= 0) watches = add_watches(fd);
    auto next_expiry_check = Clock::now() + options.expiry_check_interval;
    auto settle_until = Clock::time_point::max();  // max = no file event waiting
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (stopping) break;
      }
      const auto wake_at = std::min(settle_until, next_expiry_check);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - Clock::now()).count();
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {fd, POLLIN, 0}};
      ::poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(std::clamp<long long>(wait, 0, 60000)));
      if (fds[0].revents & POLLIN) {
        std::uint64_t ignored;
        (void)!::read(wake_fd, &ignored, sizeof ignored);
        bool again = false;
        {
          std::lock_guard lock(mu);
          std::swap(again, rewatch);
        }
        if (again && fd >= 0) watches = add_watches(fd);
      }
      // A file is often written in pieces: read it once the events have been quiet for a moment.
      if (fd >= 0 && (fds[1].revents & POLLIN) && drain(fd, watches)) settle_until = Clock::now() + options.settle;
      const auto now = Clock::now();
      if (now >= settle_until) {
        settle_until = Clock::time_point::max();
        reload_changed();
        if (fd >= 0) watches = add_watches(fd);  // a renamed-over file is a new inode
      }
      if (now >= next_expiry_check) {
        check_expiry();
        next_expiry_check = now + options.expiry_check_interval;
      }
    }
    if (fd >= 0) ::close(fd);
  }
};

TlsReloader::TlsReloader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TlsReloader::~TlsReloader() {
  stop();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

Result<std::unique_ptr<TlsReloader>> TlsReloader::create(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->wake_fd < 0) return make_error(ErrorKind::io, std::string("eventfd: ") + std::strerror(errno));
  const auto& cfg = *options.config;
  for (const auto& listener : cfg.listeners) {
    if (!config::uses_tls(listener.protocol)) continue;
    Entry entry;
    entry.security = cfg.security_for(listener.listener);
    entry.rules = impl->rules_for(entry.security);
    entry.fingerprint = fingerprint(entry.security);
    BULWARK_TRY(impl->build_server(entry));
    impl->entries.emplace(listener.listener, std::move(entry));
  }
  return std::unique_ptr<TlsReloader>(new TlsReloader(std::move(impl)));
}

std::shared_ptr<tls::ServerTlsContext> TlsReloader::server_context(const std::string& listener) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(listener);
  return it == impl_->entries.end() ? nullptr : it->second.server;
}

Result<std::shared_ptr<tls::ClientTlsContext>> TlsReloader::client_context(const std::string& listener) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(listener);
  if (it != impl_->entries.end() && it->second.client) return it->second.client;
  Entry fresh;
  if (it == impl_->entries.end()) {
    fresh.security = impl_->cfg().security_for(listener);
    fresh.rules = impl_->rules_for(fresh.security);
    fresh.fingerprint = fingerprint(fresh.security);
  }
  Entry& entry = it != impl_->entries.end() ? it->second : fresh;
  auto settings = listener_tls_settings(entry.security);
  if (!settings.ok()) return settings.error();
  auto context = tls::make_client_context(*settings);
  if (!context.ok()) return context.error();
  entry.client = *context;
  if (!entry.server) entry.client_settings = std::make_shared<const tls::TlsSettings>(std::move(*settings));
  if (it == impl_->entries.end()) impl_->entries.emplace(listener, std::move(fresh));
  return *context;
}

void TlsReloader::start() {
  if (impl_->watcher.joinable()) return;
  impl_->watcher = std::thread([this] {
    pthread_setname_np(pthread_self(), "bw-tls-reload");
    impl_->run();
  });
}

void TlsReloader::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  const std::uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->watcher.joinable()) impl_->watcher.join();
}

void TlsReloader::reload_all(std::string_view reason) {
  std::lock_guard lock(impl_->mu);
  for (auto& [name, entry] : impl_->entries) (void)impl_->reload(entry, reason);
}

Status TlsReloader::validate(const config::ListenerSecurity& security) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(security.listener);
  if (it == impl_->entries.end() || !it->second.server)
    return make_error(ErrorKind::invalid_argument, "listener " + security.listener + " is not a TLS listener of this broker");
  auto next = impl_->prepare(it->second, security);
  if (!next.ok()) return next.error();
  auto context = tls::make_server_context(*next);  // what OpenSSL itself refuses
  if (!context.ok()) return context.error();
  return Status::success();
}

void TlsReloader::apply_dynamic(const config::DynamicConfigs* cluster_default, const config::DynamicConfigs* this_broker) {
  config::BrokerConfig effective = impl_->cfg();
  effective.properties = config::with_dynamic_configs(effective.properties, cluster_default, this_broker);
  std::lock_guard lock(impl_->mu);
  for (auto& [name, entry] : impl_->entries) {
    auto security = effective.security_for(name);
    if (!same_tls_settings(security, entry.security)) (void)impl_->reconfigure(entry, security, "dynamic config");
  }
}

std::vector<TlsReloader::CertificateInForce> TlsReloader::certificates() const {
  std::vector<CertificateInForce> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [listener, entry] : impl_->entries) {
    auto in_force = entry.in_force();
    if (!in_force || !entry.server) continue;
    const std::string& name = listener;  // clang 14 cannot capture a structured binding
    auto add = [&](const X509* cert, const char* role) {
      const auto facts = tls::certificate_facts(cert);
      out.push_back({name, role, facts.subject, facts.serial, facts.not_after});
    };
    if (!in_force->keystore.keys.empty()) {
      const auto& chain = in_force->keystore.keys.front().chain;
      for (std::size_t i = 0; i < chain.size(); ++i) add(chain[i].get(), i == 0 ? "keystore" : "chain");
    }
    for (const auto& entry_cert : in_force->truststore.trusted)
      if (entry_cert.cert) add(entry_cert.cert.get(), "truststore");
  }
  return out;
}

std::optional<config::ListenerSecurity> TlsReloader::security(const std::string& listener) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(listener);
  if (it == impl_->entries.end() || !it->second.server) return std::nullopt;
  return it->second.security;
}

}  // namespace bulwark::broker
