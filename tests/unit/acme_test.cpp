// src/acme: JWS/JWK against RFC 7638 and independent computation, the DNS UPDATE + TSIG wire form
// against bytes from an independent encoder (Python's struct + hmac, written from RFC 2136/8945),
// Retry-After, and the renewal arithmetic (two thirds, ARI windows and RFC 9773's certificate ID).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "acme/dns01.h"
#include "acme/dns_update.h"
#include "acme/http.h"
#include "acme/jws.h"
#include "acme/renewal.h"

namespace bulwark::acme {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

// --- base64url, JWK, JWS

TEST(AcmeJws, Base64urlMatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg"},         {"fo", "Zm8"},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg"},  {"fooba", "Zm9vYmE"},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64url(plain), encoded);
    EXPECT_EQ(*base64url_decode(encoded), plain);
  }
  EXPECT_EQ(base64url(std::string("\xfb\xff\xfe", 3)), "-__-");  // the URL-safe alphabet, not "+//+"
  EXPECT_FALSE(base64url_decode("a+b").ok());
}

TEST(AcmeJws, ThumbprintOfRfc7638Example) {
  // RFC 7638 section 3.1: extra members (alg, kid) are not part of the thumbprint.
  json jwk = {{"kty", "RSA"},
              {"n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiF"
                    "V4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c"
                    "7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1j"
                    "F44-csFCur-kEgU8awapJzKnqDKgw"},
              {"e", "AQAB"},
              {"alg", "RS256"},
              {"kid", "2011-04-29"}};
  EXPECT_EQ(*jwk_thumbprint(jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(AcmeJws, ThumbprintOfAnEcKeyMatchesAnIndependentHash) {
  // The P-256 key of RFC 7515 appendix A.3; the expected value is SHA-256 of
  // {"crv":"P-256","kty":"EC","x":...,"y":...} computed with Python's hashlib.
  json jwk = {{"kty", "EC"},
              {"crv", "P-256"},
              {"x", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"},
              {"y", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
              {"use", "sig"}};
  EXPECT_EQ(*jwk_thumbprint(jwk), "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
  json incomplete = {{"kty", "EC"}, {"crv", "P-256"}, {"x", "AAAA"}};
  EXPECT_FALSE(jwk_thumbprint(incomplete).ok());
}

TEST(AcmeJws, PublicJwkHoldsTheKeysCoordinates) {
  auto key = generate_p256_key();
  ASSERT_TRUE(key.ok());
  auto jwk = public_jwk(key->get());
  ASSERT_TRUE(jwk.ok());
  EXPECT_EQ((*jwk)["kty"], "EC");
  EXPECT_EQ((*jwk)["crv"], "P-256");
  unsigned char point[65];
  std::size_t length = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(key->get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &length), 1);
  ASSERT_EQ(length, 65u);  // uncompressed: 04 || x || y
  EXPECT_EQ(*base64url_decode((*jwk)["x"].get<std::string>()), std::string(reinterpret_cast<char*>(point + 1), 32));
  EXPECT_EQ(*base64url_decode((*jwk)["y"].get<std::string>()), std::string(reinterpret_cast<char*>(point + 33), 32));
}

// Checks a raw r||s ES256 signature with OpenSSL's verifier (which wants DER).
bool es256_verifies(EVP_PKEY* key, const std::string& input, const std::string& raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_length),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  OPENSSL_free(der);
  return ok;
}

TEST(AcmeJws, SignedRequestVerifiesWithTheAccountKey) {
  auto key = generate_p256_key();
  ASSERT_TRUE(key.ok());
  json header = {{"alg", "ES256"}, {"nonce", "abc"}, {"url", "https://ca.example/new-order"}, {"kid", "https://ca.example/acct/1"}};
  auto body = sign_jws(key->get(), header, R"({"identifiers":[]})");
  ASSERT_TRUE(body.ok());
  auto doc = json::parse(*body);
  EXPECT_EQ(json::parse(*base64url_decode(doc["protected"].get<std::string>())), header);
  EXPECT_EQ(*base64url_decode(doc["payload"].get<std::string>()), R"({"identifiers":[]})");
  auto signature = base64url_decode(doc["signature"].get<std::string>());
  ASSERT_EQ(signature->size(), 64u);
  const std::string input = doc["protected"].get<std::string>() + "." + doc["payload"].get<std::string>();
  EXPECT_TRUE(es256_verifies(key->get(), input, *signature));
  EXPECT_FALSE(es256_verifies(key->get(), input + "x", *signature));

  auto post_as_get = sign_jws(key->get(), header, "");
  EXPECT_EQ(json::parse(*post_as_get)["payload"], "");  // RFC 8555 6.3: empty, not base64url("{}")
}

TEST(AcmeJws, KeyFromPemMustBeP256) {
  auto key = generate_p256_key();
  auto pem = private_key_pem(key->get());
  ASSERT_TRUE(pem.ok());
  EXPECT_TRUE(parse_p256_private_key(*pem, "k").ok());
  EvpPkeyPtr p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  auto p384_pem = private_key_pem(p384.get());
  auto refused = parse_p256_private_key(*p384_pem, "the account key file");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("not a P-256"), std::string::npos);
}

TEST(AcmeJws, Dns01ValueIsBase64urlSha256OfTheKeyAuthorization) {
  EXPECT_EQ(key_authorization("tok", "thumb"), "tok.thumb");
  // SHA-256("abc") = ba7816bf...; its base64 is ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=.
  EXPECT_EQ(dns01_txt_value("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
  EXPECT_EQ(challenge_fqdn("kafka-1.example.com"), "_acme-challenge.kafka-1.example.com.");
  EXPECT_EQ(challenge_fqdn("*.example.com"), "_acme-challenge.example.com.");
}

// --- DNS UPDATE and TSIG

const char* kKeyFile = R"(# made by tsig-keygen -a hmac-sha256 acme-update
key "acme-update" {
	algorithm hmac-sha256;
	secret "n8mgu8R74uEeo5iN/Pjg/MIFj9/EAlS7pO9ct99Uuv4=";
};
)";

dns::TxtUpdate sample_update() {
  dns::TxtUpdate update;
  update.zone = "example.test.";
  update.fqdn = "_acme-challenge.kafka-1.example.test.";
  update.value = "gOp496wLuP6YY7bl6MZwFc3GSAU_Vqb4XrFA3J0WYwo";
  update.ttl = 60;
  return update;
}

// From the independent Python encoder (see the file comment): id 0x1234, the sample update.
constexpr const char* kUnsignedAdd =
    "123428000001000000010000076578616d706c65047465737400000600010f5f61636d652d6368616c6c656e6765076b61666b612d3107657861"
    "6d706c65047465737400001000010000003c002c2b674f70343936774c755036595937626c364d5a77466333475341555f5671623458724641"
    "334a305759776f";
constexpr const char* kUnsignedRemove =
    "123428000001000000010000076578616d706c65047465737400000600010f5f61636d652d6368616c6c656e6765076b61666b612d3107657861"
    "6d706c65047465737400001000fe00000000002c2b674f70343936774c755036595937626c364d5a77466333475341555f5671623458724641"
    "334a305759776f";
// ...signed with the key above at time 1700000000, fudge 300.
constexpr const char* kSignedAdd =
    "123428000001000000010001076578616d706c65047465737400000600010f5f61636d652d6368616c6c656e6765076b61666b612d3107657861"
    "6d706c65047465737400001000010000003c002c2b674f70343936774c755036595937626c364d5a77466333475341555f5671623458724641"
    "334a305759776f0b61636d652d7570646174650000fa00ff00000000003d0b686d61632d7368613235360000006553f100012c002013383e58"
    "4a0a6b6432c800137bdf9b0b023702a2d948c48605d30111c20c02de123400000000";
constexpr const char* kRequestMac = "13383e584a0a6b6432c800137bdf9b0b023702a2d948c48605d30111c20c02de";
// A server's NOERROR answer to it, signed at 1700000001 over the request MAC + answer (RFC 8945 4.3.1).
constexpr const char* kSignedResponse =
    "1234a8000001000000000001076578616d706c65047465737400000600010b61636d652d7570646174650000fa00ff00000000003d0b686d61"
    "632d7368613235360000006553f101012c002001b4033d332eac51dcc53ea3cb53c792e2193e3f525d5ff3594cf8f8db420f991234000000"
    "00";

TEST(AcmeDnsUpdate, ParsesTsigKeygenKeyFiles) {
  auto key = dns::parse_tsig_key(kKeyFile, "tsig.key");
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->name, "acme-update.");
  EXPECT_EQ(key->algorithm, "hmac-sha256");
  EXPECT_EQ(key->secret.size(), 32u);
  EXPECT_EQ(to_hex(key->secret.substr(0, 4)), "9fc9a0bb");

  auto no_secret = dns::parse_tsig_key(R"(key "k" { algorithm hmac-sha256; };)", "f");
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.error().message.find("no secret"), std::string::npos);
  EXPECT_FALSE(dns::parse_tsig_key(R"(key "k" { algorithm hmac-md5; secret "AAAA"; };)", "f").ok());
  EXPECT_FALSE(dns::parse_tsig_key("zone \"x\" {};", "f").ok());
}

TEST(AcmeDnsUpdate, EncodesAddAndRemoveAsRfc2136Says) {
  auto add = dns::encode_txt_update(sample_update(), 0x1234);
  ASSERT_TRUE(add.ok());
  EXPECT_EQ(to_hex(*add), kUnsignedAdd);
  auto update = sample_update();
  update.change = dns::TxtChange::remove;
  EXPECT_EQ(to_hex(*dns::encode_txt_update(update, 0x1234)), kUnsignedRemove);
  update.value = std::string(256, 'a');
  EXPECT_FALSE(dns::encode_txt_update(update, 1).ok());
  EXPECT_FALSE(dns::encode_name("a..b").ok());
  EXPECT_FALSE(dns::encode_name(std::string(64, 'a') + ".com").ok());
}

TEST(AcmeDnsUpdate, TsigSignatureMatchesAnIndependentEncoder) {
  auto key = dns::parse_tsig_key(kKeyFile, "tsig.key");
  auto signed_add = dns::tsig_sign(from_hex(kUnsignedAdd), *key, 1700000000);
  ASSERT_TRUE(signed_add.ok());
  EXPECT_EQ(to_hex(signed_add->mac), kRequestMac);
  EXPECT_EQ(to_hex(signed_add->wire), kSignedAdd);

  // Parsed back: the TSIG record is the last additional record, with what we signed.
  auto message = dns::parse_message(signed_add->wire);
  ASSERT_TRUE(message.ok());
  EXPECT_EQ(message->opcode(), 5);
  ASSERT_EQ(message->additional.size(), 1u);
  EXPECT_EQ(message->additional[0].name, "acme-update.");
  EXPECT_EQ(message->additional[0].type, dns::kTypeTsig);
  auto tsig = dns::parse_tsig(signed_add->wire, message->additional[0]);
  ASSERT_TRUE(tsig.ok());
  EXPECT_EQ(tsig->algorithm, "hmac-sha256");
  EXPECT_EQ(tsig->time_signed, 1700000000u);
  EXPECT_EQ(tsig->fudge, 300);
  EXPECT_EQ(tsig->original_id, 0x1234);
  EXPECT_TRUE(dns::tsig_verify(signed_add->wire, *key, {}, 1700000000).ok());
}

TEST(AcmeDnsUpdate, TsigVerifyRefusesTamperingWrongKeysAndStaleTimes) {
  auto key = dns::parse_tsig_key(kKeyFile, "tsig.key");
  const std::string wire = from_hex(kSignedAdd);
  std::string tampered = wire;
  tampered[40] ^= 1;  // inside the zone name
  EXPECT_FALSE(dns::tsig_verify(tampered, *key, {}, 1700000000).ok());
  auto other = *key;
  other.secret[0] ^= 1;
  auto refused = dns::tsig_verify(wire, other, {}, 1700000000);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("does not match"), std::string::npos);
  EXPECT_FALSE(dns::tsig_verify(wire, *key, {}, 1700000000 + 301).ok());
  EXPECT_FALSE(dns::tsig_verify(from_hex(kUnsignedAdd), *key, {}, 1700000000).ok());
}

TEST(AcmeDnsUpdate, VerifiesASignedResponseAgainstTheRequestMac) {
  auto key = dns::parse_tsig_key(kKeyFile, "tsig.key");
  const std::string response = from_hex(kSignedResponse);
  auto message = dns::parse_message(response);
  ASSERT_TRUE(message.ok());
  EXPECT_TRUE(message->response());
  EXPECT_EQ(message->rcode(), 0);
  EXPECT_TRUE(dns::tsig_verify(response, *key, from_hex(kRequestMac), 1700000001).ok());
  std::string other_mac = from_hex(kRequestMac);
  other_mac[0] ^= 1;  // an answer to another request
  EXPECT_FALSE(dns::tsig_verify(response, *key, other_mac, 1700000001).ok());
}

TEST(AcmeDnsUpdate, ReadsCompressedNamesOfAnSoaAnswer) {
  // NXDOMAIN for _acme-challenge.a.example.test with the zone's SOA in the authority section; the
  // SOA owner is a pointer to "example.test" inside the question (offset 12 + 16 + 2 = 30).
  std::string wire = from_hex("beef81830001000000010000");
  wire += *dns::encode_name("_acme-challenge.a.example.test.");
  wire += from_hex("00060001");
  wire += from_hex("c01e") + from_hex("000600010000003c0002") + from_hex("c01e");
  auto message = dns::parse_message(wire);
  ASSERT_TRUE(message.ok()) << message.error().message;
  EXPECT_EQ(message->rcode(), 3);
  ASSERT_EQ(message->authority.size(), 1u);
  EXPECT_EQ(message->authority[0].name, "example.test.");
  EXPECT_EQ(message->authority[0].type, dns::kTypeSoa);

  std::string loop = from_hex("beef81830001000000000000") + from_hex("c00c") + from_hex("00060001");
  EXPECT_FALSE(dns::parse_message(loop).ok());
  EXPECT_FALSE(dns::parse_message(wire.substr(0, wire.size() - 3)).ok());
}

TEST(AcmeDnsUpdate, RcodesAndTsigErrorsInPlainWords) {
  EXPECT_NE(dns::rcode_text(5).find("REFUSED"), std::string::npos);
  EXPECT_NE(dns::rcode_text(9).find("NOTAUTH"), std::string::npos);
  EXPECT_NE(dns::tsig_error_text(16).find("BADSIG"), std::string::npos);
  EXPECT_NE(dns::tsig_error_text(17).find("BADKEY"), std::string::npos);
  EXPECT_NE(dns::tsig_error_text(18).find("BADTIME"), std::string::npos);
}

TEST(AcmeDnsUpdate, ServerAddressForms) {
  auto key = dns::parse_tsig_key(kKeyFile, "tsig.key");
  EXPECT_TRUE(dns::UpdateClient::create("127.0.0.1:5353", *key).ok());
  EXPECT_TRUE(dns::UpdateClient::create("[::1]:5353", *key).ok());
  EXPECT_TRUE(dns::UpdateClient::create("ns1.example.com", *key).ok());
  EXPECT_FALSE(dns::UpdateClient::create("127.0.0.1:dns", *key).ok());
}

// A DNS server on loopback that answers every UDP query with only the TC (truncated) bit, and the
// same query over TCP with `tcp_answer_flags` and the SOA of example.test. in the authority section.
class TruncatingDnsServer {
 public:
  explicit TruncatingDnsServer(std::uint16_t tcp_answer_flags) {
    for (int attempt = 0; attempt < 20 && port_ == 0; ++attempt) {
      tcp_ = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t length = sizeof address;
      if (::bind(tcp_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(tcp_, 1) != 0 ||
          ::getsockname(tcp_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(tcp_);
        continue;
      }
      udp_ = ::socket(AF_INET, SOCK_DGRAM, 0);
      if (::bind(udp_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        port_ = ntohs(address.sin_port);
      } else {
        ::close(udp_);
        ::close(tcp_);
      }
    }
    thread_ = std::thread([this, tcp_answer_flags] { serve(tcp_answer_flags); });
  }
  ~TruncatingDnsServer() {
    thread_.join();
    ::close(udp_);
    ::close(tcp_);
  }
  int port() const { return port_; }

 private:
  void serve(std::uint16_t flags) {
    char query[512];
    sockaddr_in peer{};
    socklen_t peer_length = sizeof peer;
    ssize_t n = ::recvfrom(udp_, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (n < 12) return;
    std::string truncated(query, 2);
    truncated += from_hex("8200000000000000000000");  // QR + TC, no sections
    ::sendto(udp_, truncated.data(), truncated.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_length);
    int connection = ::accept(tcp_, nullptr, nullptr);
    if (connection < 0) return;
    char framed[514];
    std::size_t length = 0;
    if (::recv(connection, framed, 2, MSG_WAITALL) == 2)
      length = static_cast<unsigned char>(framed[0]) << 8 | static_cast<unsigned char>(framed[1]);
    if (length < 12 || length > 512 ||
        ::recv(connection, framed + 2, length, MSG_WAITALL) != static_cast<ssize_t>(length)) {
      ::close(connection);
      return;
    }
    std::string question(framed + 2 + 12, length - 12);
    std::string answer(framed + 2, 2);  // the query's ID
    answer += static_cast<char>(flags >> 8);
    answer += static_cast<char>(flags & 0xff);
    answer += from_hex("0001000000010000") + question;
    answer += *dns::encode_name("example.test.") + from_hex("000600010000003c0000");
    std::string reply;
    reply += static_cast<char>(answer.size() >> 8);
    reply += static_cast<char>(answer.size() & 0xff);
    reply += answer;
    ::send(connection, reply.data(), reply.size(), 0);
    ::close(connection);
  }
  int tcp_ = -1, udp_ = -1, port_ = 0;
  std::thread thread_;
};

// The UDP answer holds no SOA, so a zone found can only have come over TCP.
TEST(AcmeDnsUpdate, ATruncatedUdpAnswerIsAskedAgainOverTcp) {
  auto key = dns::parse_tsig_key(kKeyFile, "tsig.key");
  std::optional<std::string> zone;
  {
    TruncatingDnsServer server(0x8403);  // QR + AA, NXDOMAIN: the name does not exist, its zone does
    ASSERT_NE(server.port(), 0);
    auto client = dns::UpdateClient::create("127.0.0.1:" + std::to_string(server.port()), *key);
    auto found = client->find_zone("_acme-challenge.kafka-1.example.test.");
    ASSERT_TRUE(found.ok()) << found.error().message;
    zone = *found;
  }
  EXPECT_EQ(zone, "example.test.");
  TruncatingDnsServer refusing(0x8005);  // REFUSED over TCP
  auto client = dns::UpdateClient::create("127.0.0.1:" + std::to_string(refusing.port()), *key);
  auto refused = client->find_zone("_acme-challenge.kafka-1.other.test.");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("REFUSED"), std::string::npos);
  EXPECT_NE(refused.error().message.find("--dns-zone"), std::string::npos);
}

// --- Retry-After and renewal

TEST(AcmeRetryAfter, SecondsAndHttpDates) {
  const std::time_t now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(parse_retry_after("120", now), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after(" 5 ", now), std::chrono::seconds(5));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), std::chrono::seconds(30));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), std::chrono::seconds(0));  // past
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-3", now), std::nullopt);
}

TEST(AcmeRenewal, DueTwoThirdsIntoTheLifetime) {
  const std::time_t day = 86400;
  const std::time_t not_before = 1700000000, not_after = not_before + 90 * day;
  EXPECT_EQ(two_thirds_point(not_before, not_after), not_before + 60 * day);
  EXPECT_FALSE(renewal_decision(not_before, not_after, not_before + 60 * day - 1).due);
  auto due = renewal_decision(not_before, not_after, not_before + 60 * day);
  EXPECT_TRUE(due.due);
  EXPECT_EQ(due.renew_at, not_before + 60 * day);
  EXPECT_NE(due.reason.find("two thirds"), std::string::npos);
  // A 6-day certificate (Let's Encrypt's short-lived profile) is due after 4 days.
  EXPECT_TRUE(renewal_decision(not_before, not_before + 6 * day, not_before + 4 * day).due);
  EXPECT_FALSE(renewal_decision(not_before, not_before + 6 * day, not_before + 4 * day - 60).due);
}

TEST(AcmeRenewal, AriWindowOverridesTheTwoThirdsRule) {
  const std::time_t day = 86400;
  const std::time_t not_before = 1700000000, not_after = not_before + 90 * day;
  // The server asks for an early renewal (e.g. a revocation coming): due before two thirds.
  RenewalWindow early{not_before + 10 * day, not_before + 11 * day};
  EXPECT_TRUE(renewal_decision(not_before, not_after, not_before + 10 * day, early).due);
  EXPECT_FALSE(renewal_decision(not_before, not_after, not_before + 10 * day - 1, early).due);
  // ...or later than two thirds: not due at two thirds.
  RenewalWindow late{not_before + 70 * day, not_before + 72 * day};
  auto decision = renewal_decision(not_before, not_after, not_before + 65 * day, late);
  EXPECT_FALSE(decision.due);
  EXPECT_EQ(decision.renew_at, late.start);
  EXPECT_NE(decision.reason.find("ARI"), std::string::npos);
}

TEST(AcmeRenewal, ParsesRenewalInfoAndRfc3339) {
  EXPECT_EQ(*parse_rfc3339("2023-11-14T22:13:20Z"), 1700000000);
  EXPECT_EQ(*parse_rfc3339("2023-11-14T22:13:20.123456Z"), 1700000000);
  EXPECT_EQ(*parse_rfc3339("2023-11-15T00:13:20+02:00"), 1700000000);
  EXPECT_EQ(*parse_rfc3339("2023-11-14T21:13:20-01:00"), 1700000000);
  EXPECT_FALSE(parse_rfc3339("2023-11-14 22:13").ok());
  EXPECT_FALSE(parse_rfc3339("2023-11-14T22:13:20").ok());  // no zone
  auto window = parse_renewal_info(
      R"({"suggestedWindow":{"start":"2023-11-14T22:13:20Z","end":"2023-11-15T22:13:20Z"},"explanationURL":"x"})");
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->start, 1700000000);
  EXPECT_EQ(window->end, 1700000000 + 86400);
  EXPECT_FALSE(parse_renewal_info(R"({"suggestedWindow":{"start":"2023-11-15T22:13:20Z","end":"2023-11-14T22:13:20Z"}})").ok());
  EXPECT_FALSE(parse_renewal_info("{}").ok());
}

TEST(AcmeRenewal, AriCertificateIdOfRfc9773Example) {
  // RFC 9773 section 4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 and serial
  // 0x87654321 (DER 00 87 65 43 21) give "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
  X509Ptr cert(X509_new());
  auto key = generate_p256_key();
  BIGNUM* serial = nullptr;
  BN_hex2bn(&serial, "87654321");
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key->get());
  AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
  akid->keyid = ASN1_OCTET_STRING_new();
  const std::string id = from_hex("69885b6b87464041e1b37b847ba0ae2cde01c8d4");
  ASN1_OCTET_STRING_set(akid->keyid, reinterpret_cast<const unsigned char*>(id.data()), static_cast<int>(id.size()));
  X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT);
  AUTHORITY_KEYID_free(akid);
  ASSERT_GT(X509_sign(cert.get(), key->get(), EVP_sha256()), 0);
  auto cert_id = ari_certificate_id(cert.get());
  ASSERT_TRUE(cert_id.ok()) << cert_id.error().message;
  EXPECT_EQ(*cert_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

}  // namespace
}  // namespace bulwark::acme
