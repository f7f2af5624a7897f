// SASL login on an admin connection: SaslHandshake v1, then SaslAuthenticate carrying PLAIN or SCRAM
// tokens (KIP-152), as Kafka's Java client does.
#include <fmt/format.h>

#include "client/client.h"
#include "wire/generated/sasl_authenticate.h"
#include "wire/generated/sasl_handshake.h"

namespace bulwark::client {
namespace {

constexpr std::int16_t kUnsupportedSaslMechanism = 33;
constexpr std::int16_t kSaslAuthenticationFailed = 58;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "none" : out;
}

}  // namespace

Result<Bytes> AdminConnection::sasl_step(std::int16_t version, Bytes token) {
  wire::msg::SaslAuthenticateRequest request;
  request.auth_bytes = std::move(token);
  ByteWriter body;
  request.encode(body, version);
  auto reply = exchange(wire::msg::SaslAuthenticateRequest::api_key, version, body.buffer());
  if (!reply) return reply.error();
  ByteReader reader(*reply);
  wire::msg::SaslAuthenticateResponse response;
  if (!response.decode(reader, version)) return undecodable(wire::msg::SaslAuthenticateRequest::api_key, version);
  if (response.error_code != 0) {
    const std::string said = response.error_message.value_or("");
    const std::string user = settings_.sasl ? settings_.sasl->username : std::string();
    if (response.error_code == kSaslAuthenticationFailed) {
      return make_error(ErrorKind::unauthenticated,
                        fmt::format("SASL authentication failed for user {}{}{} (SASL_AUTHENTICATION_FAILED)", user,
                                    said.empty() ? "" : ": ", said));
    }
    return make_error(ErrorKind::unauthenticated, fmt::format("SASL authentication for user {} failed with {}{}{}", user,
                                                              error_name(response.error_code),
                                                              said.empty() ? "" : ": ", said));
  }
  return std::move(response.auth_bytes);
}

Status AdminConnection::authenticate(const SaslLogin& login) {
  namespace sasl = security::sasl;
  using wire::msg::SaslAuthenticateRequest;
  using wire::msg::SaslHandshakeRequest;
  using wire::msg::SaslHandshakeResponse;
  const std::string mechanism(sasl::name_of(login.mechanism));

  // v1 means "SaslAuthenticate follows"; a v0-only broker would expect raw tokens, which we do not speak.
  auto handshake_version = negotiate(SaslHandshakeRequest::api_key, 1, 1);
  if (!handshake_version) return handshake_version.error();
  auto authenticate_version = negotiate(SaslAuthenticateRequest::api_key, SaslAuthenticateRequest::lowest_supported_version,
                                        SaslAuthenticateRequest::highest_supported_version);
  if (!authenticate_version) return authenticate_version.error();

  SaslHandshakeRequest handshake;
  handshake.mechanism = mechanism;
  ByteWriter body;
  handshake.encode(body, *handshake_version);
  auto reply = exchange(SaslHandshakeRequest::api_key, *handshake_version, body.buffer());
  if (!reply) return reply.error();
  ByteReader reader(*reply);
  SaslHandshakeResponse response;
  if (!response.decode(reader, *handshake_version)) return undecodable(SaslHandshakeRequest::api_key, *handshake_version);
  if (response.error_code == kUnsupportedSaslMechanism) {
    return make_error(ErrorKind::unauthenticated,
                      fmt::format("the broker does not enable SASL mechanism {} on this listener (it offers: {})",
                                  mechanism, join(response.mechanisms)));
  }
  if (response.error_code != 0) {
    return make_error(ErrorKind::unauthenticated,
                      fmt::format("the broker refused the SASL handshake for {}: {}", mechanism,
                                  error_name(response.error_code)));
  }

  if (login.mechanism == sasl::Mechanism::plain) {
    auto done = sasl_step(*authenticate_version, sasl::plain_token(login.username, login.password.reveal()));
    if (!done) return done.error();
    return Status::success();
  }
  sasl::ScramClient scram(login.mechanism, login.username, login.password.reveal());
  auto server_first = sasl_step(*authenticate_version, scram.first_message());
  if (!server_first) return server_first.error();
  auto client_final = scram.final_message(*server_first);
  if (!client_final) {
    return make_error(ErrorKind::unauthenticated,
                      fmt::format("{} login for user {}: {}", mechanism, login.username, client_final.error().message));
  }
  auto server_final = sasl_step(*authenticate_version, std::move(*client_final));
  if (!server_final) return server_final.error();
  auto verified = scram.verify_server_final(*server_final);
  if (!verified.ok()) {
    return make_error(ErrorKind::unauthenticated,
                      fmt::format("{} login for user {}: the broker's proof did not verify: {}", mechanism,
                                  login.username, verified.error().message));
  }
  return Status::success();
}

}  // namespace bulwark::client
