// ACL administration (Create/Describe/DeleteAcls), SASL logins (SaslHandshake v0 with bare tokens and
// v1 with SaslAuthenticate; PLAIN and SCRAM-SHA-256/512) and SCRAM credential administration, with
// Kafka's checks and error codes.
#include <algorithm>
#include <chrono>
#include <deque>
#include <set>

#include "base/log.h"
#include "broker/state.h"
#include "wire/protocol.h"
#include "wire/generated/alter_user_scram_credentials.h"
#include "wire/generated/create_acls.h"
#include "wire/generated/delete_acls.h"
#include "wire/generated/describe_acls.h"
#include "wire/generated/describe_user_scram_credentials.h"
#include "wire/generated/sasl_authenticate.h"
#include "wire/generated/sasl_handshake.h"

namespace bulwark::broker {
namespace {

using security::AclBinding;
using security::AclBindingFilter;
using security::Operation;
using security::PatternType;
using security::Permission;
using security::ResourceType;
namespace sasl = security::sasl;

constexpr std::int16_t kDuplicateResource = 92;
constexpr std::int16_t kUnacceptableCredential = 93;
constexpr const char* kNoAuthorizer = "No Authorizer is configured on the broker (authorizer.class.name is not set)";

struct DecodedFilter {
  AclBindingFilter filter;
  std::string error;  // non-empty: the filter is invalid
};

DecodedFilter decode_filter(std::int8_t resource_type, const std::optional<std::string>& name, std::int8_t pattern_type,
                            const std::optional<std::string>& principal, const std::optional<std::string>& host,
                            std::int8_t operation, std::int8_t permission) {
  DecodedFilter out;
  auto type = security::resource_type_from_code(resource_type);
  auto pattern = security::pattern_type_from_code(pattern_type);
  auto op = security::operation_from_code(operation);
  auto perm = security::permission_from_code(permission);
  if (!type || !pattern || !op || !perm) {
    out.error = "Invalid ACL filter: unknown resource type, pattern type, operation or permission code";
    return out;
  }
  out.filter = AclBindingFilter{*type, name, *pattern, principal, host, *op, *perm};
  return out;
}

void add_description(wire::msg::DescribeAclsResponse& response, const AclBinding& binding) {
  auto it = std::find_if(response.resources.begin(), response.resources.end(), [&](const auto& r) {
    return r.resource_type == static_cast<std::int8_t>(binding.resource_type) &&
           r.resource_name == binding.resource_name &&
           r.pattern_type == static_cast<std::int8_t>(binding.pattern_type);
  });
  if (it == response.resources.end()) {
    response.resources.push_back({static_cast<std::int8_t>(binding.resource_type), binding.resource_name,
                                  static_cast<std::int8_t>(binding.pattern_type), {}, {}});
    it = std::prev(response.resources.end());
  }
  it->acls.push_back({binding.principal, binding.host, static_cast<std::int8_t>(binding.operation),
                      static_cast<std::int8_t>(binding.permission), {}});
}

}  // namespace

namespace {

// Why a forwarded request got no usable answer; "" when it did.
std::string controller_failure(const Result<Bytes>& answer, bool decoded) {
  if (!answer.ok()) return answer.error().message;
  return decoded ? "" : "malformed answer from the controller";
}

// Answers once this node's image shows the change (or after 10 s: the change is committed either way).
template <class Response>
void answer_when_visible(BrokerState& state, DeferredReply reply, Response response, ImageWaiters::Predicate visible) {
  state.image_waiters.wait(state.image(), std::move(visible), std::chrono::steady_clock::now() + std::chrono::seconds(10),
                           [reply, response](bool) mutable { reply.send(response); });
}

}  // namespace

void handle_create_acls(BrokerState& state, Call& call) {
  wire::msg::CreateAclsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::CreateAclsResponse response;
  auto fail_all = [&](KafkaError error, const std::string& message) {
    for (std::size_t i = 0; i < request.creations.size(); ++i) response.results.push_back({code(error), message, {}});
    respond(call, response);
  };
  if (!state.acls) return fail_all(KafkaError::security_disabled, kNoAuthorizer);
  if (!authorized_cluster(state, call, Operation::alter))
    return fail_all(KafkaError::cluster_authorization_failed, "Cluster authorization failed.");

  std::vector<AclBinding> valid;
  std::vector<std::size_t> valid_index;
  response.results.resize(request.creations.size());
  for (std::size_t i = 0; i < request.creations.size(); ++i) {
    const auto& c = request.creations[i];
    auto& result = response.results[i];
    result.error_message = std::nullopt;
    auto type = security::resource_type_from_code(c.resource_type);
    auto pattern = security::pattern_type_from_code(c.resource_pattern_type);
    auto op = security::operation_from_code(c.operation);
    auto perm = security::permission_from_code(c.permission_type);
    Status valid_binding = Status::success();
    AclBinding binding;
    if (!type || !pattern || !op || !perm) {
      valid_binding = make_error(ErrorKind::invalid_argument, "unknown resource type, pattern type, operation or permission code");
    } else {
      binding = AclBinding{*type, c.resource_name, *pattern, c.principal, c.host, *op, *perm};
      valid_binding = security::validate_acl_binding(binding);
    }
    if (!valid_binding.ok()) {
      result.error_code = code(KafkaError::invalid_request);
      result.error_message = "Invalid ACL: " + valid_binding.error().message;
      continue;
    }
    valid.push_back(std::move(binding));
    valid_index.push_back(i);
  }
  if (valid.empty()) return respond(call, response);
  // The controller stores them (AccessControlEntryRecords); the answer waits for them to be here too.
  wire::msg::CreateAclsRequest forwarded;
  for (auto i : valid_index) forwarded.creations.push_back(request.creations[i]);
  auto principal = session_of(call).principal.to_string();
  DeferredReply reply{call.header, call.responder};
  const auto version = call.header.api_version;
  state.forward_to_controller(
      call, forwarded.api_key, version, wire::encode_message(forwarded, version), std::chrono::seconds(30),
      [&state, reply, response, valid, valid_index, version, principal](Result<Bytes> answer) mutable {
        auto decoded = answer.ok() ? wire::decode_message<wire::msg::CreateAclsResponse>(*answer, version) : std::nullopt;
        const auto failure = controller_failure(answer, decoded && decoded->results.size() == valid_index.size());
        std::vector<AclBinding> created;
        for (std::size_t k = 0; k < valid_index.size(); ++k) {
          auto& result = response.results[valid_index[k]];
          if (!failure.empty()) {
            result.error_code = code(KafkaError::request_timed_out);
            result.error_message = failure;
            continue;
          }
          result = decoded->results[k];
          if (result.error_code == 0) {
            created.push_back(valid[k]);
            log::info("[audit] {} added ACL {}", principal, valid[k].to_string());
          }
        }
        answer_when_visible(state, reply, response,
                            [created](const cluster::MetadataImage& image) { return image_has_acls(image, created, true); });
      });
}

void handle_describe_acls(BrokerState& state, Call& call) {
  wire::msg::DescribeAclsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DescribeAclsResponse response;
  response.error_message = std::nullopt;
  if (!state.acls) {
    response.error_code = code(KafkaError::security_disabled);
    response.error_message = kNoAuthorizer;
  } else if (!authorized_cluster(state, call, Operation::describe)) {
    response.error_code = code(KafkaError::cluster_authorization_failed);
    response.error_message = "Cluster authorization failed.";
  } else {
    auto decoded = decode_filter(request.resource_type_filter, request.resource_name_filter, request.pattern_type_filter,
                                 request.principal_filter, request.host_filter, request.operation,
                                 request.permission_type);
    if (!decoded.error.empty()) {
      response.error_code = code(KafkaError::invalid_request);
      response.error_message = decoded.error;
    } else {
      for (const auto& binding : state.acls->authorizer().describe(decoded.filter)) add_description(response, binding);
    }
  }
  respond(call, response);
}

void handle_delete_acls(BrokerState& state, Call& call) {
  wire::msg::DeleteAclsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DeleteAclsResponse response;
  auto fail_all = [&](KafkaError error, const std::string& message) {
    for (std::size_t i = 0; i < request.filters.size(); ++i) response.filter_results.push_back({code(error), message, {}, {}});
    respond(call, response);
  };
  if (!state.acls) return fail_all(KafkaError::security_disabled, kNoAuthorizer);
  if (!authorized_cluster(state, call, Operation::alter))
    return fail_all(KafkaError::cluster_authorization_failed, "Cluster authorization failed.");
  // Filters that decode are the controller's to apply; the others are answered here.
  response.filter_results.resize(request.filters.size());
  wire::msg::DeleteAclsRequest forwarded;
  std::vector<std::size_t> forwarded_index;
  for (std::size_t i = 0; i < request.filters.size(); ++i) {
    const auto& f = request.filters[i];
    auto& result = response.filter_results[i];
    result.error_message = std::nullopt;
    auto decoded = decode_filter(f.resource_type_filter, f.resource_name_filter, f.pattern_type_filter,
                                 f.principal_filter, f.host_filter, f.operation, f.permission_type);
    if (!decoded.error.empty()) {
      result.error_code = code(KafkaError::invalid_request);
      result.error_message = decoded.error;
      continue;
    }
    forwarded.filters.push_back(f);
    forwarded_index.push_back(i);
  }
  if (forwarded_index.empty()) return respond(call, response);
  auto principal = session_of(call).principal.to_string();
  DeferredReply reply{call.header, call.responder};
  const auto version = call.header.api_version;
  state.forward_to_controller(
      call, forwarded.api_key, version, wire::encode_message(forwarded, version), std::chrono::seconds(30),
      [&state, reply, response, forwarded_index, version, principal](Result<Bytes> answer) mutable {
        auto decoded = answer.ok() ? wire::decode_message<wire::msg::DeleteAclsResponse>(*answer, version) : std::nullopt;
        const auto failure =
            controller_failure(answer, decoded && decoded->filter_results.size() == forwarded_index.size());
        std::vector<AclBinding> removed;
        for (std::size_t k = 0; k < forwarded_index.size(); ++k) {
          auto& result = response.filter_results[forwarded_index[k]];
          if (!failure.empty()) {
            result.error_code = code(KafkaError::request_timed_out);
            result.error_message = failure;
            continue;
          }
          result = decoded->filter_results[k];
          for (const auto& m : result.matching_acls) {
            auto type = security::resource_type_from_code(m.resource_type);
            auto pattern = security::pattern_type_from_code(m.pattern_type);
            auto op = security::operation_from_code(m.operation);
            auto perm = security::permission_from_code(m.permission_type);
            if (!type || !pattern || !op || !perm) continue;
            removed.push_back({*type, m.resource_name, *pattern, m.principal, m.host, *op, *perm});
            log::info("[audit] {} removed ACL {}", principal, removed.back().to_string());
          }
        }
        answer_when_visible(state, reply, response,
                            [removed](const cluster::MetadataImage& image) { return image_has_acls(image, removed, false); });
      });
}

// ---------------------------------------------------------------------------------------------------
// SASL logins.
namespace {

// Failed logins from one host within a minute; each failure answers later (Kafka's
// connection.failed.authentication.delay.ms, doubled per recent failure, at most 5 s), so guessing
// passwords over many connections gets slower, not only over one.
class LoginThrottle {
 public:
  std::chrono::milliseconds failure_delay(const std::string& host, std::int64_t base_ms) {
    using namespace std::chrono;
    const auto now = steady_clock::now();
    std::lock_guard lock(mu_);
    auto& times = failures_[host];
    while (!times.empty() && now - times.front() > minutes(1)) times.pop_front();
    times.push_back(now);
    if (failures_.size() > 10000) failures_.clear();  // bounded memory under a flood of hosts
    const auto doublings = std::min<std::size_t>(times.size() - 1, 6);
    return milliseconds(std::min<std::int64_t>(base_ms << doublings, std::max<std::int64_t>(base_ms, 5000)));
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> failures_;
};
LoginThrottle login_throttle;

const ListenerSasl* listener_sasl(const BrokerState& state, const std::string& listener) {
  auto it = state.sasl.find(listener);
  return it == state.sasl.end() ? nullptr : &it->second;
}

std::vector<std::string> mechanism_names(const ListenerSasl* sasl) {
  std::vector<std::string> names;
  if (sasl)
    for (auto m : sasl->mechanisms) names.emplace_back(sasl::name_of(m));
  return names;
}

struct TokenOutcome {
  Result<Bytes> reply = Bytes{};
  bool complete = false;
};

// One client token of the login in progress.
TokenOutcome process_token(BrokerState& state, const net::PeerInfo& peer, Session& session, ByteView token) {
  TokenOutcome out;
  if (*session.mechanism == sasl::Mechanism::plain) {
    const auto* listener = listener_sasl(state, peer.listener);
    auto credentials = sasl::parse_plain_token(token);
    if (!credentials.ok()) {
      out.reply = make_error(ErrorKind::unauthenticated, credentials.error().message);  // already "Authentication failed: ..."
      return out;
    }
    const std::string* expected = nullptr;
    if (listener)
      if (auto user = listener->plain_users.find(credentials->username); user != listener->plain_users.end())
        expected = &user->second;
    // Compare even for unknown users, so timing does not tell which users exist.
    const bool match =
        sasl::constant_time_equal(as_bytes(credentials->password), as_bytes(expected ? *expected : credentials->password));
    if (!expected || !match) {
      out.reply = make_error(ErrorKind::unauthenticated, "Authentication failed: Invalid username or password");
      return out;
    }
    session.principal = {"User", credentials->username};
    out.complete = true;
    return out;
  }
  out.reply = session.scram->step(token);
  if (out.reply.ok() && session.scram->complete()) {
    session.principal = {"User", session.scram->username()};
    out.complete = true;
  }
  return out;
}

void finish_login(const net::PeerInfo& peer, Session& session) {
  session.sasl_stage = Session::SaslStage::done;
  session.scram.reset();
  log::info("connection {} from {} on {} authenticated as {} with {}", peer.connection_id, peer.remote_address,
            peer.listener, session.principal.to_string(), sasl::name_of(*session.mechanism));
}

void log_failed_login(const net::PeerInfo& peer, const Session& session, const Error& error) {
  log::warn("[audit] failed authentication of connection {} from {} on {} with {}: {}", peer.connection_id,
            peer.remote_address, peer.listener, session.mechanism ? sasl::name_of(*session.mechanism) : "SASL",
            error.message);
}

}  // namespace

void handle_sasl_handshake(BrokerState& state, Call& call) {
  wire::msg::SaslHandshakeRequest request;
  if (!decode_request(call, request)) return;
  auto& session = session_of(call);
  const auto* listener = listener_sasl(state, call.ctx.peer.listener);
  wire::msg::SaslHandshakeResponse response;
  response.mechanisms = mechanism_names(listener);
  if (!listener || session.sasl_stage != Session::SaslStage::awaiting_handshake) {
    response.error_code = code(KafkaError::illegal_sasl_state);
    respond(call, response);
    return;
  }
  auto mechanism = sasl::mechanism_from(request.mechanism);
  if (!mechanism.ok() ||
      std::find(listener->mechanisms.begin(), listener->mechanisms.end(), *mechanism) == listener->mechanisms.end()) {
    log::warn("connection {} from {} asked for SASL mechanism '{}', which listener {} does not enable", call.ctx.peer.connection_id,
              call.ctx.peer.remote_address, request.mechanism, call.ctx.peer.listener);
    response.error_code = code(KafkaError::unsupported_sasl_mechanism);
    respond(call, response);
    return;
  }
  session.mechanism = *mechanism;
  if (sasl::is_scram(*mechanism)) {
    auto* scram_store = state.scram.get();
    session.scram = std::make_unique<sasl::ScramServer>(
        *mechanism, [scram_store, m = *mechanism](const std::string& user) { return scram_store->find(user, m); });
  }
  session.sasl_stage = call.header.api_version == 0 ? Session::SaslStage::awaiting_raw_token
                                                    : Session::SaslStage::awaiting_authenticate;
  respond(call, response);
}

void handle_sasl_authenticate(BrokerState& state, Call& call) {
  wire::msg::SaslAuthenticateRequest request;
  if (!decode_request(call, request)) return;
  auto& session = session_of(call);
  wire::msg::SaslAuthenticateResponse response;
  response.error_message = std::nullopt;
  if (session.sasl_stage != Session::SaslStage::awaiting_authenticate) {
    response.error_code = code(KafkaError::illegal_sasl_state);
    response.error_message = "SaslAuthenticate is only valid after SaslHandshake v1 and before the login completes";
    respond(call, response);
    return;
  }
  auto outcome = process_token(state, call.ctx.peer, session, request.auth_bytes);
  if (!outcome.reply.ok()) {
    log_failed_login(call.ctx.peer, session, outcome.reply.error());
    state.metrics.authentication(call.ctx.peer.listener, false);
    // No second try on this connection: everything after a failure closes it.
    session.sasl_stage = Session::SaslStage::failed;
    response.error_code = code(KafkaError::sasl_authentication_failed);
    response.error_message = outcome.reply.error().message;
    auto frame = encode_response_frame(call.header, [&](ByteWriter& w) { response.encode(w, call.header.api_version); });
    auto delay = login_throttle.failure_delay(call.ctx.peer.remote_address, state.config.connection_failed_authentication_delay_ms);
    call.ctx.loop.run_after(delay, [responder = call.responder, frame = std::move(frame)]() mutable {
      responder.respond(std::move(frame));
    });
    return;
  }
  response.auth_bytes = std::move(*outcome.reply);
  if (outcome.complete) {
    finish_login(call.ctx.peer, session);
    state.metrics.authentication(call.ctx.peer.listener, true);
  }
  respond(call, response);
}

void handle_raw_sasl_token(BrokerState& state, net::RequestContext& ctx, Bytes frame, net::Responder responder) {
  auto& session = static_cast<Session&>(*ctx.state);
  auto outcome = process_token(state, ctx.peer, session, frame);
  if (!outcome.reply.ok()) {
    // Kafka answers a failed v0 login by closing the connection (after the failure delay).
    log_failed_login(ctx.peer, session, outcome.reply.error());
    state.metrics.authentication(ctx.peer.listener, false);
    session.sasl_stage = Session::SaslStage::failed;
    auto delay = login_throttle.failure_delay(ctx.peer.remote_address, state.config.connection_failed_authentication_delay_ms);
    ctx.loop.run_after(delay, [responder]() mutable { responder.close_connection(); });
    return;
  }
  if (outcome.complete) {
    finish_login(ctx.peer, session);
    state.metrics.authentication(ctx.peer.listener, true);
  }
  responder.respond(std::move(*outcome.reply));  // a bare token (empty for PLAIN's success)
}

// ---------------------------------------------------------------------------------------------------
void handle_describe_user_scram_credentials(BrokerState& state, Call& call) {
  wire::msg::DescribeUserScramCredentialsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::DescribeUserScramCredentialsResponse response;
  response.error_message = std::nullopt;
  if (!authorized_cluster(state, call, Operation::describe)) {
    response.error_code = code(KafkaError::cluster_authorization_failed);
    response.error_message = "Cluster authorization failed.";
    respond(call, response);
    return;
  }
  auto all = state.scram->all();
  auto describe = [&](const std::string& user, const std::map<sasl::Mechanism, sasl::ScramCredential>& credentials) {
    wire::msg::DescribeUserScramCredentialsResponse::DescribeUserScramCredentialsResult result;
    result.user = user;
    result.error_message = std::nullopt;
    for (const auto& [mechanism, credential] : credentials)
      result.credential_infos.push_back({sasl::scram_wire_type(mechanism), credential.iterations, {}});
    return result;
  };
  if (!request.users || request.users->empty()) {
    for (const auto& [user, credentials] : all) response.results.push_back(describe(user, credentials));
  } else {
    std::map<std::string, int> seen;
    for (const auto& u : *request.users) ++seen[u.name];
    for (const auto& u : *request.users) {
      auto& count = seen[u.name];
      if (count < 0) continue;  // a duplicate, already reported
      if (count > 1) {
        count = -1;
        response.results.push_back({u.name, kDuplicateResource,
                                    "Cannot describe SCRAM credentials for the same user twice in a single request: " + u.name,
                                    {}, {}});
        continue;
      }
      auto it = all.find(u.name);
      if (it == all.end()) {
        response.results.push_back({u.name, code(KafkaError::resource_not_found),
                                    "Attempt to describe a user credential that does not exist: " + u.name, {}, {}});
      } else {
        response.results.push_back(describe(u.name, it->second));
      }
    }
  }
  respond(call, response);
}

void handle_alter_user_scram_credentials(BrokerState& state, Call& call) {
  wire::msg::AlterUserScramCredentialsRequest request;
  if (!decode_request(call, request)) return;
  wire::msg::AlterUserScramCredentialsResponse response;
  std::map<std::string, std::pair<std::int16_t, std::string>> errors;  // per user, first error wins
  std::vector<std::string> order;
  auto note_user = [&](const std::string& user) {
    if (std::find(order.begin(), order.end(), user) == order.end()) order.push_back(user);
  };
  auto fail = [&](const std::string& user, std::int16_t error, std::string message) {
    errors.emplace(user, std::make_pair(error, std::move(message)));
  };
  const bool allowed = authorized_cluster(state, call, Operation::alter);
  std::map<std::pair<std::string, std::int8_t>, int> touched;
  for (const auto& d : request.deletions) ++touched[{d.name, d.mechanism}];
  for (const auto& u : request.upsertions) ++touched[{u.name, u.mechanism}];

  auto all = state.scram->all();
  std::vector<std::pair<std::string, sasl::Mechanism>> deletions;
  std::vector<sasl::ScramSpec> upsertions;
  // The checks deletions and upsertions share; nullopt after recording the user's error.
  auto check_common = [&](const std::string& user, std::int8_t wire_mechanism) -> std::optional<sasl::Mechanism> {
    note_user(user);
    auto mechanism = sasl::scram_mechanism_from_wire(wire_mechanism);
    if (!allowed) {
      fail(user, code(KafkaError::cluster_authorization_failed), "Cluster authorization failed.");
    } else if (user.empty()) {
      fail(user, kUnacceptableCredential, "Username must not be empty");
    } else if (!mechanism.ok()) {
      fail(user, code(KafkaError::unsupported_sasl_mechanism), "Unknown SCRAM mechanism");
    } else if (touched[{user, wire_mechanism}] > 1) {
      fail(user, kDuplicateResource, "A user credential cannot be altered twice in the same request");
    } else {
      return *mechanism;
    }
    return std::nullopt;
  };
  for (const auto& d : request.deletions) {
    auto mechanism = check_common(d.name, d.mechanism);
    if (!mechanism) continue;
    auto user = all.find(d.name);
    if (user == all.end() || !user->second.count(*mechanism)) {
      fail(d.name, code(KafkaError::resource_not_found), "Attempt to delete a user credential that does not exist");
      continue;
    }
    deletions.emplace_back(d.name, *mechanism);
  }
  for (const auto& u : request.upsertions) {
    auto mechanism = check_common(u.name, u.mechanism);
    if (!mechanism) continue;
    if (u.iterations < sasl::kMinScramIterations || u.iterations > sasl::kMaxScramIterations) {
      fail(u.name, kUnacceptableCredential,
           "Iterations must be between " + std::to_string(sasl::kMinScramIterations) + " and " +
               std::to_string(sasl::kMaxScramIterations));
      continue;
    }
    auto credential = sasl::scram_credential_from_salted_password(*mechanism, u.salted_password, u.salt, u.iterations);
    if (!credential.ok()) {
      fail(u.name, kUnacceptableCredential, credential.error().message);
      continue;
    }
    upsertions.push_back({*mechanism, u.name, std::move(*credential)});
  }
  // A user with any error has none of its changes applied (Kafka validates per user).
  std::erase_if(deletions, [&](const auto& d) { return errors.count(d.first) > 0; });
  std::erase_if(upsertions, [&](const auto& u) { return errors.count(u.username) > 0; });
  auto answer_here = [order, errors](wire::msg::AlterUserScramCredentialsResponse& out) {
    for (const auto& user : order) {
      auto it = errors.find(user);
      if (it == errors.end()) out.results.push_back({user, 0, std::nullopt, {}});
      else out.results.push_back({user, it->second.first, it->second.second, {}});
    }
  };
  if (deletions.empty() && upsertions.empty()) {
    answer_here(response);
    return respond(call, response);
  }
  // The valid changes go to the controller (UserScramCredentialRecords); the others are answered here.
  wire::msg::AlterUserScramCredentialsRequest forwarded;
  for (const auto& d : request.deletions)
    if (!errors.count(d.name)) forwarded.deletions.push_back(d);
  for (const auto& u : request.upsertions)
    if (!errors.count(u.name)) forwarded.upsertions.push_back(u);
  auto principal = session_of(call).principal.to_string();
  DeferredReply reply{call.header, call.responder};
  const auto version = call.header.api_version;
  state.forward_to_controller(
      call, forwarded.api_key, version, wire::encode_message(forwarded, version), std::chrono::seconds(30),
      [&state, reply, errors, order, deletions, upsertions, version, principal](Result<Bytes> answer) mutable {
        auto decoded =
            answer.ok() ? wire::decode_message<wire::msg::AlterUserScramCredentialsResponse>(*answer, version) : std::nullopt;
        const auto failure = controller_failure(answer, decoded.has_value());
        const bool ok = failure.empty();
        std::map<std::string, wire::msg::AlterUserScramCredentialsResponse::AlterUserScramCredentialsResult> by_user;
        if (ok)
          for (auto& result : decoded->results) by_user[result.user] = result;
        wire::msg::AlterUserScramCredentialsResponse response;
        for (const auto& user : order) {
          if (auto it = errors.find(user); it != errors.end()) {
            response.results.push_back({user, it->second.first, it->second.second, {}});
          } else if (!ok) {
            response.results.push_back({user, code(KafkaError::request_timed_out), failure, {}});
          } else if (auto found = by_user.find(user); found != by_user.end()) {
            response.results.push_back(found->second);
          } else {
            response.results.push_back({user, 0, std::nullopt, {}});
          }
        }
        auto succeeded = [&](const std::string& user) {
          return ok && !errors.count(user) && (!by_user.count(user) || by_user[user].error_code == 0);
        };
        std::vector<std::pair<std::string, sasl::Mechanism>> gone;
        std::vector<sasl::ScramSpec> set;
        for (const auto& d : deletions)
          if (succeeded(d.first)) {
            gone.push_back(d);
            log::info("[audit] {} deleted the {} credential of user {}", principal, sasl::name_of(d.second), d.first);
          }
        for (const auto& u : upsertions)
          if (succeeded(u.username)) {
            set.push_back(u);
            log::info("[audit] {} set the {} credential of user {}", principal, sasl::name_of(u.mechanism), u.username);
          }
        answer_when_visible(state, reply, response, [gone, set](const cluster::MetadataImage& image) {
          return image_has_scram_changes(image, gone, set);
        });
      });
}

}  // namespace bulwark::broker
