// RFC 2136 dynamic DNS UPDATE of TXT records, signed with TSIG (RFC 8945), for the DNS-01 challenge:
// the message encoder and parser, TSIG signing and checking, BIND's `tsig-keygen` key files, and the
// UDP exchange (TCP when the answer is truncated). Internal to src/acme; only OpenSSL's HMAC is used.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace bulwark::acme::dns {

struct TsigKey {
  std::string name;                      // e.g. "acme-update." (always absolute, lower case)
  std::string algorithm = "hmac-sha256";  // hmac-sha256, hmac-sha384 or hmac-sha512
  std::string secret;                    // raw bytes (never logged)
};
// `key "name" { algorithm hmac-sha256; secret "base64"; };` as tsig-keygen writes it; the first key.
Result<TsigKey> parse_tsig_key(std::string_view text, const std::string& source);

constexpr std::uint16_t kTypeSoa = 6;
constexpr std::uint16_t kTypeTxt = 16;
constexpr std::uint16_t kTypeTsig = 250;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kClassNone = 254;
constexpr std::uint16_t kClassAny = 255;

// A domain name in wire form, uncompressed ("a.b." and "a.b" alike). Refuses empty or long labels.
Result<std::string> encode_name(std::string_view name);

enum class TxtChange { add, remove };
struct TxtUpdate {
  std::string zone;   // the zone that holds fqdn, e.g. "example.com."
  std::string fqdn;   // "_acme-challenge.kafka-1.example.com."
  std::string value;  // the TXT string (up to 255 bytes)
  std::uint32_t ttl = 60;
  TxtChange change = TxtChange::add;  // remove deletes exactly this value (class NONE, RFC 2136 2.5.4)
};
// An unsigned UPDATE message (opcode 5): zone section SOA/IN, one RR in the update section.
Result<std::string> encode_txt_update(const TxtUpdate& update, std::uint16_t id);
// A query for the SOA of name (no recursion wanted), to learn which zone holds a name.
Result<std::string> encode_soa_query(std::string_view name, std::uint16_t id);

struct SignedMessage {
  std::string wire;  // the message with its TSIG record appended
  std::string mac;   // needed to check the response's MAC
};
// Appends a TSIG record (RFC 8945 section 4) with this time and fudge; error and other data empty.
Result<SignedMessage> tsig_sign(std::string_view message, const TsigKey& key, std::uint64_t time_signed,
                                std::uint16_t fudge = 300);

struct Record {
  std::string name;  // dotted, absolute ("example.com.")
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
  std::uint32_t ttl = 0;
  std::string rdata;
  std::size_t offset = 0;        // where the record starts in the message
  std::size_t rdata_offset = 0;  // where its rdata starts
};

struct Message {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::vector<std::string> questions;  // names only
  std::vector<Record> answers, authority, additional;
  int opcode() const { return (flags >> 11) & 0xf; }
  int rcode() const { return flags & 0xf; }
  bool response() const { return (flags & 0x8000) != 0; }
  bool truncated() const { return (flags & 0x0200) != 0; }
};
Result<Message> parse_message(std::string_view wire);

struct TsigRecord {
  std::string algorithm;
  std::uint64_t time_signed = 0;
  std::uint16_t fudge = 0;
  std::string mac;
  std::uint16_t original_id = 0;
  std::uint16_t error = 0;
  std::string other;
};
Result<TsigRecord> parse_tsig(std::string_view wire, const Record& record);

// Checks the TSIG record that ends `wire`: key name, algorithm, MAC and time. For a response,
// request_mac is the MAC of the signed request it answers; for a request it is empty.
Status tsig_verify(std::string_view wire, const TsigKey& key, std::string_view request_mac, std::time_t now);

// "NOERROR", "REFUSED", "NOTAUTH", ... with what it means for an update; TSIG errors "BADSIG", ...
std::string rcode_text(int rcode);
std::string tsig_error_text(int error);

// A DNS server that takes signed updates, e.g. BIND with `allow-update { key "name"; };`.
class UpdateClient {
 public:
  // server: "HOST:PORT", "[v6]:PORT" or "HOST" (port 53).
  static Result<UpdateClient> create(std::string_view server, TsigKey key);
  // The zone holding fqdn, from the SOA in the server's answer or authority section.
  Result<std::string> find_zone(const std::string& fqdn);
  // Sends the update signed and checks the signed answer; plain words for every refusal.
  Status apply(const TxtUpdate& update);
  const std::string& server() const { return server_; }

 private:
  Result<std::string> exchange(const std::string& query, std::uint16_t id);
  std::string server_;
  std::string host_, port_;
  TsigKey key_;
};

}  // namespace bulwark::acme::dns
