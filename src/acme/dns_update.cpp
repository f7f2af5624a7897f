#include "acme/dns_update.h"

#include <netdb.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <regex>

#include "base/openssl.h"

namespace bulwark::acme::dns {
namespace {

Error corrupt(const std::string& what) { return make_error(ErrorKind::corrupt, "malformed DNS message: " + what); }

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string absolute(std::string_view name) {
  std::string out(name);
  if (out.empty() || out.back() != '.') out += '.';
  return out;
}

void put16(std::string& out, std::uint16_t value) {
  out += static_cast<char>(value >> 8);
  out += static_cast<char>(value & 0xff);
}
void put32(std::string& out, std::uint32_t value) {
  put16(out, static_cast<std::uint16_t>(value >> 16));
  put16(out, static_cast<std::uint16_t>(value & 0xffff));
}
void put48(std::string& out, std::uint64_t value) {
  put16(out, static_cast<std::uint16_t>((value >> 32) & 0xffff));
  put32(out, static_cast<std::uint32_t>(value & 0xffffffff));
}

std::string header(std::uint16_t id, std::uint16_t flags, std::uint16_t qd, std::uint16_t an, std::uint16_t ns,
                   std::uint16_t ar) {
  std::string out;
  for (std::uint16_t v : {id, flags, qd, an, ns, ar}) put16(out, v);
  return out;
}

struct Reader {
  std::string_view wire;
  std::size_t at = 0;
  bool need(std::size_t n) const { return at + n <= wire.size(); }
  std::uint16_t u16() {
    auto v = static_cast<std::uint16_t>((static_cast<unsigned char>(wire[at]) << 8) | static_cast<unsigned char>(wire[at + 1]));
    at += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t high = u16();
    return (high << 16) | u16();
  }
};

// Reads a possibly compressed name at r.at and moves past it.
Result<std::string> read_name(Reader& r) {
  std::string name;
  std::size_t cursor = r.at;
  bool jumped = false;
  for (int hops = 0; hops < 128; ++hops) {
    if (cursor >= r.wire.size()) return corrupt("a name runs past the end");
    auto length = static_cast<unsigned char>(r.wire[cursor]);
    if ((length & 0xc0) == 0xc0) {
      if (cursor + 1 >= r.wire.size()) return corrupt("a compression pointer runs past the end");
      std::size_t target = ((length & 0x3f) << 8) | static_cast<unsigned char>(r.wire[cursor + 1]);
      if (!jumped) r.at = cursor + 2;
      jumped = true;
      cursor = target;
      continue;
    }
    if (length & 0xc0) return corrupt("an unknown label type");
    if (length == 0) {
      if (!jumped) r.at = cursor + 1;
      return name.empty() ? std::string(".") : name;
    }
    if (cursor + 1 + length > r.wire.size()) return corrupt("a label runs past the end");
    name.append(r.wire.substr(cursor + 1, length));
    name += '.';
    cursor += 1 + length;
  }
  return corrupt("a compression loop");
}

Result<Record> read_record(Reader& r) {
  Record record;
  record.offset = r.at;
  auto name = read_name(r);
  if (!name) return name.error();
  record.name = std::move(*name);
  if (!r.need(10)) return corrupt("a record header runs past the end");
  record.type = r.u16();
  record.klass = r.u16();
  record.ttl = r.u32();
  std::uint16_t length = r.u16();
  if (!r.need(length)) return corrupt("record data runs past the end");
  record.rdata_offset = r.at;
  record.rdata = std::string(r.wire.substr(r.at, length));
  r.at += length;
  return record;
}

const EVP_MD* digest_of(const std::string& algorithm) {
  if (algorithm == "hmac-sha256") return EVP_sha256();
  if (algorithm == "hmac-sha384") return EVP_sha384();
  if (algorithm == "hmac-sha512") return EVP_sha512();
  return nullptr;
}

Result<std::string> hmac(const TsigKey& key, std::string_view data) {
  const EVP_MD* md = digest_of(key.algorithm);
  if (!md) return make_error(ErrorKind::unsupported, "TSIG algorithm " + key.algorithm + " is not supported");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(md, key.secret.data(), static_cast<int>(key.secret.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &length))
    return make_error(ErrorKind::internal, "HMAC failed: " + openssl_errors());
  return std::string(reinterpret_cast<char*>(out), length);
}

// The TSIG variables of RFC 8945 section 4.3.3, after the message in the MAC's input.
Result<std::string> tsig_variables(const TsigKey& key, std::uint64_t time_signed, std::uint16_t fudge,
                                   std::uint16_t error, std::string_view other) {
  auto name = encode_name(lower(key.name));
  if (!name) return name.error();
  auto algorithm = encode_name(key.algorithm);
  if (!algorithm) return algorithm.error();
  std::string out = *name;
  put16(out, kClassAny);
  put32(out, 0);
  out += *algorithm;
  put48(out, time_signed);
  put16(out, fudge);
  put16(out, error);
  put16(out, static_cast<std::uint16_t>(other.size()));
  out += other;
  return out;
}

Result<std::string> decode_base64(std::string_view text) {
  std::string clean;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.empty() || clean.size() % 4 != 0) return make_error(ErrorKind::corrupt, "the secret is not base64");
  std::string out(clean.size() / 4 * 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (length < 0) return make_error(ErrorKind::corrupt, "the secret is not base64");
  std::size_t padding = clean.ends_with("==") ? 2 : clean.ends_with("=") ? 1 : 0;
  out.resize(static_cast<std::size_t>(length) - padding);
  return out;
}

std::string strip_comments(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '#' || text.substr(i, 2) == "//") {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (text.substr(i, 2) == "/*") {
      auto end = text.find("*/", i + 2);
      i = end == std::string_view::npos ? text.size() : end + 1;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::uint16_t random_id() {
  std::uint16_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1) id = static_cast<std::uint16_t>(::getpid());
  return id;
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

Result<std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>> resolve(const std::string& host, const std::string& port,
                                                                 int socktype) {
  addrinfo hints{};
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return make_error(ErrorKind::not_found, "cannot resolve the DNS server " + host + ": " + gai_strerror(rc));
  return std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>(found, freeaddrinfo);
}

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

Status read_exactly(int fd, char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    if (!wait_readable(fd, 10000)) return make_error(ErrorKind::unavailable, "the DNS server did not answer over TCP");
    ssize_t n = ::recv(fd, out + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(ErrorKind::unavailable, "the DNS server closed the TCP connection");
    done += static_cast<std::size_t>(n);
  }
  return Status::success();
}

}  // namespace

Result<TsigKey> parse_tsig_key(std::string_view text, const std::string& source) {
  std::string clean = strip_comments(text);
  static const std::regex key_block(R"re(key\s+"?([^"\s{]+)"?\s*\{([^}]*)\})re");
  static const std::regex algorithm_line(R"re(algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;)re");
  static const std::regex secret_line(R"re(secret\s+"([^"]+)"\s*;)re");
  std::smatch block;
  if (!std::regex_search(clean, block, key_block))
    return make_error(ErrorKind::invalid_argument,
                      source + " holds no key block like `key \"name\" { algorithm hmac-sha256; secret \"...\"; };` "
                               "(make one with `tsig-keygen -a hmac-sha256 NAME`)");
  TsigKey key;
  key.name = absolute(lower(block[1].str()));
  std::string body = block[2].str();
  std::smatch field;
  if (std::regex_search(body, field, algorithm_line)) key.algorithm = lower(field[1].str());
  if (key.algorithm.ends_with(".")) key.algorithm.pop_back();
  if (!digest_of(key.algorithm))
    return make_error(ErrorKind::unsupported, source + ": TSIG algorithm " + key.algorithm +
                                                  " is not supported (use hmac-sha256, hmac-sha384 or hmac-sha512)");
  if (!std::regex_search(body, field, secret_line))
    return make_error(ErrorKind::invalid_argument, source + ": the key " + key.name + " has no secret");
  auto secret = decode_base64(field[1].str());
  if (!secret || secret->empty())
    return make_error(ErrorKind::invalid_argument, source + ": the secret of " + key.name + " is not base64");
  key.secret = std::move(*secret);
  return key;
}

Result<std::string> encode_name(std::string_view name) {
  std::string text = absolute(name);
  if (text == ".") return std::string(1, '\0');
  if (text.size() > 254) return make_error(ErrorKind::invalid_argument, "the DNS name " + text + " is too long");
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t dot = text.find('.', start);
    std::size_t length = dot - start;
    if (length == 0 || length > 63)
      return make_error(ErrorKind::invalid_argument, "the DNS name " + text + " has an empty or over-long label");
    out += static_cast<char>(length);
    out.append(text, start, length);
    start = dot + 1;
  }
  out += '\0';
  return out;
}

Result<std::string> encode_txt_update(const TxtUpdate& update, std::uint16_t id) {
  if (update.value.size() > 255) return make_error(ErrorKind::invalid_argument, "a TXT string holds at most 255 bytes");
  auto zone = encode_name(update.zone);
  if (!zone) return zone.error();
  auto owner = encode_name(update.fqdn);
  if (!owner) return owner.error();
  std::string out = header(id, 5 << 11, 1, 0, 1, 0);  // opcode UPDATE; ZOCOUNT, PRCOUNT, UPCOUNT, ADCOUNT
  out += *zone;
  put16(out, kTypeSoa);
  put16(out, kClassIn);
  out += *owner;
  put16(out, kTypeTxt);
  const bool add = update.change == TxtChange::add;
  put16(out, add ? kClassIn : kClassNone);
  put32(out, add ? update.ttl : 0);
  put16(out, static_cast<std::uint16_t>(update.value.size() + 1));
  out += static_cast<char>(update.value.size());
  out += update.value;
  return out;
}

Result<std::string> encode_soa_query(std::string_view name, std::uint16_t id) {
  auto wire_name = encode_name(name);
  if (!wire_name) return wire_name.error();
  std::string out = header(id, 0, 1, 0, 0, 0);
  out += *wire_name;
  put16(out, kTypeSoa);
  put16(out, kClassIn);
  return out;
}

Result<SignedMessage> tsig_sign(std::string_view message, const TsigKey& key, std::uint64_t time_signed,
                                std::uint16_t fudge) {
  if (message.size() < 12) return corrupt("shorter than its header");
  auto variables = tsig_variables(key, time_signed, fudge, 0, {});
  if (!variables) return variables.error();
  auto mac = hmac(key, std::string(message) + *variables);
  if (!mac) return mac.error();
  auto name = encode_name(lower(key.name));
  auto algorithm = encode_name(key.algorithm);
  if (!name || !algorithm) return make_error(ErrorKind::invalid_argument, "bad TSIG key name");
  std::string rdata = *algorithm;
  put48(rdata, time_signed);
  put16(rdata, fudge);
  put16(rdata, static_cast<std::uint16_t>(mac->size()));
  rdata += *mac;
  rdata += message.substr(0, 2);  // original ID
  put16(rdata, 0);                // error
  put16(rdata, 0);                // other len
  std::string wire(message);
  auto arcount = static_cast<std::uint16_t>((static_cast<unsigned char>(wire[10]) << 8 | static_cast<unsigned char>(wire[11])) + 1);
  wire[10] = static_cast<char>(arcount >> 8);
  wire[11] = static_cast<char>(arcount & 0xff);
  wire += *name;
  put16(wire, kTypeTsig);
  put16(wire, kClassAny);
  put32(wire, 0);
  put16(wire, static_cast<std::uint16_t>(rdata.size()));
  wire += rdata;
  return SignedMessage{std::move(wire), std::move(*mac)};
}

Result<Message> parse_message(std::string_view wire) {
  Reader r{wire};
  if (!r.need(12)) return corrupt("shorter than its header");
  Message m;
  m.id = r.u16();
  m.flags = r.u16();
  std::uint16_t counts[4];
  for (auto& c : counts) c = r.u16();
  for (int i = 0; i < counts[0]; ++i) {
    auto name = read_name(r);
    if (!name) return name.error();
    if (!r.need(4)) return corrupt("a question runs past the end");
    r.at += 4;
    m.questions.push_back(std::move(*name));
  }
  std::vector<Record>* sections[] = {&m.answers, &m.authority, &m.additional};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < counts[s + 1]; ++i) {
      auto record = read_record(r);
      if (!record) return record.error();
      sections[s]->push_back(std::move(*record));
    }
  }
  return m;
}

Result<TsigRecord> parse_tsig(std::string_view wire, const Record& record) {
  Reader r{wire, record.rdata_offset};
  TsigRecord t;
  auto algorithm = read_name(r);
  if (!algorithm) return algorithm.error();
  t.algorithm = lower(*algorithm);
  if (t.algorithm.ends_with(".")) t.algorithm.pop_back();
  if (!r.need(10)) return corrupt("a short TSIG record");
  std::uint64_t high = r.u16();
  t.time_signed = (high << 32) | r.u32();
  t.fudge = r.u16();
  std::uint16_t mac_size = r.u16();
  if (!r.need(mac_size + 6u)) return corrupt("a short TSIG record");
  t.mac = std::string(wire.substr(r.at, mac_size));
  r.at += mac_size;
  t.original_id = r.u16();
  t.error = r.u16();
  std::uint16_t other_size = r.u16();
  if (!r.need(other_size)) return corrupt("a short TSIG record");
  t.other = std::string(wire.substr(r.at, other_size));
  return t;
}

Status tsig_verify(std::string_view wire, const TsigKey& key, std::string_view request_mac, std::time_t now) {
  auto message = parse_message(wire);
  if (!message) return message.error();
  if (message->additional.empty() || message->additional.back().type != kTypeTsig)
    return make_error(ErrorKind::unauthenticated, "the DNS message is not signed with TSIG");
  const Record& record = message->additional.back();
  if (lower(record.name) != lower(key.name))
    return make_error(ErrorKind::unauthenticated, "the DNS message is signed with another key (" + record.name + ")");
  auto tsig = parse_tsig(wire, record);
  if (!tsig) return tsig.error();
  if (tsig->algorithm != key.algorithm)
    return make_error(ErrorKind::unauthenticated, "the DNS message is signed with " + tsig->algorithm);
  // The MAC covers the message as it was before the TSIG record: one fewer additional record, the
  // original ID.
  std::string unsigned_part(wire.substr(0, record.offset));
  auto arcount = static_cast<std::uint16_t>(message->additional.size() - 1);
  unsigned_part[0] = static_cast<char>(tsig->original_id >> 8);
  unsigned_part[1] = static_cast<char>(tsig->original_id & 0xff);
  unsigned_part[10] = static_cast<char>(arcount >> 8);
  unsigned_part[11] = static_cast<char>(arcount & 0xff);
  std::string input;
  if (!request_mac.empty()) {
    put16(input, static_cast<std::uint16_t>(request_mac.size()));
    input += request_mac;
  }
  input += unsigned_part;
  auto variables = tsig_variables(key, tsig->time_signed, tsig->fudge, tsig->error, tsig->other);
  if (!variables) return variables.error();
  auto expected = hmac(key, input + *variables);
  if (!expected) return expected.error();
  if (expected->size() != tsig->mac.size() || CRYPTO_memcmp(expected->data(), tsig->mac.data(), expected->size()) != 0)
    return make_error(ErrorKind::unauthenticated, "the DNS message's TSIG MAC does not match the key");
  auto skew = static_cast<std::int64_t>(tsig->time_signed) - static_cast<std::int64_t>(now);
  if (skew > tsig->fudge || -skew > tsig->fudge)
    return make_error(ErrorKind::unauthenticated, "the DNS message's TSIG time is " + std::to_string(skew) +
                                                      " s away from ours (fudge " + std::to_string(tsig->fudge) + " s)");
  return Status::success();
}

std::string rcode_text(int rcode) {
  switch (rcode) {
    case 0: return "NOERROR";
    case 1: return "FORMERR (the server could not read the update)";
    case 2: return "SERVFAIL (the server failed internally)";
    case 3: return "NXDOMAIN (a prerequisite name does not exist)";
    case 4: return "NOTIMP (the server does not do dynamic updates)";
    case 5: return "REFUSED (the server's policy refuses this update: check allow-update / update-policy for the key)";
    case 6: return "YXDOMAIN";
    case 7: return "YXRRSET";
    case 8: return "NXRRSET";
    case 9: return "NOTAUTH (the server is not authoritative for the zone, or did not accept the TSIG signature)";
    case 10: return "NOTZONE (the name is not in the zone)";
  }
  return "RCODE " + std::to_string(rcode);
}

std::string tsig_error_text(int error) {
  switch (error) {
    case 16: return "BADSIG (the MAC does not match: the secret differs from the server's)";
    case 17: return "BADKEY (the server does not know this key name or algorithm)";
    case 18: return "BADTIME (our clock and the server's differ by more than the fudge)";
    case 22: return "BADTRUNC";
  }
  return "TSIG error " + std::to_string(error);
}

Result<UpdateClient> UpdateClient::create(std::string_view server, TsigKey key) {
  UpdateClient client;
  client.server_ = std::string(server);
  client.key_ = std::move(key);
  std::string text(server);
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string::npos) return make_error(ErrorKind::invalid_argument, "bad DNS server " + text);
    client.host_ = text.substr(1, close - 1);
    client.port_ = close + 1 < text.size() && text[close + 1] == ':' ? text.substr(close + 2) : "53";
  } else if (auto colon = text.rfind(':'); colon != std::string::npos && text.find(':') == colon) {
    client.host_ = text.substr(0, colon);
    client.port_ = text.substr(colon + 1);
  } else {
    client.host_ = text;
    client.port_ = "53";
  }
  if (client.host_.empty() || client.port_.empty() ||
      client.port_.find_first_not_of("0123456789") != std::string::npos)
    return make_error(ErrorKind::invalid_argument, "bad DNS server \"" + text + "\": use HOST:PORT");
  return client;
}

Result<std::string> UpdateClient::exchange(const std::string& query, std::uint16_t id) {
  auto udp_addresses = resolve(host_, port_, SOCK_DGRAM);
  if (!udp_addresses) return udp_addresses.error();
  const addrinfo* address = udp_addresses->get();
  std::string answer;
  bool got = false;
  for (int attempt = 0; attempt < 3 && !got; ++attempt) {
    FdCloser udp{::socket(address->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    if (udp.fd < 0 || ::connect(udp.fd, address->ai_addr, address->ai_addrlen) != 0 ||
        ::send(udp.fd, query.data(), query.size(), 0) != static_cast<ssize_t>(query.size()))
      return make_error(ErrorKind::unavailable, "cannot send to the DNS server " + server_ + ": " + std::strerror(errno));
    while (wait_readable(udp.fd, 3000)) {
      char buffer[65535];
      ssize_t n = ::recv(udp.fd, buffer, sizeof buffer, 0);
      if (n < 0 && errno == ECONNREFUSED)
        return make_error(ErrorKind::unavailable, "nothing listens for DNS at " + server_ + " (connection refused)");
      if (n < 12) continue;
      std::string_view reply(buffer, static_cast<std::size_t>(n));
      if ((static_cast<unsigned char>(reply[0]) << 8 | static_cast<unsigned char>(reply[1])) != id) continue;  // stale
      answer = std::string(reply);
      got = true;
      break;
    }
  }
  if (!got) return make_error(ErrorKind::unavailable, "the DNS server " + server_ + " did not answer (3 tries over UDP)");
  if (!(static_cast<unsigned char>(answer[2]) & 0x02)) return answer;

  // Truncated: the same question over TCP, each message preceded by its 2-byte length.
  auto tcp_addresses = resolve(host_, port_, SOCK_STREAM);
  if (!tcp_addresses) return tcp_addresses.error();
  FdCloser tcp{::socket(tcp_addresses->get()->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (tcp.fd < 0 || ::connect(tcp.fd, tcp_addresses->get()->ai_addr, tcp_addresses->get()->ai_addrlen) != 0)
    return make_error(ErrorKind::unavailable, "cannot connect over TCP to the DNS server " + server_ + ": " +
                                                  std::strerror(errno));
  std::string framed;
  put16(framed, static_cast<std::uint16_t>(query.size()));
  framed += query;
  if (::send(tcp.fd, framed.data(), framed.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(framed.size()))
    return make_error(ErrorKind::unavailable, "cannot send over TCP to the DNS server " + server_);
  char length_bytes[2];
  BULWARK_TRY(read_exactly(tcp.fd, length_bytes, 2));
  std::size_t length = static_cast<unsigned char>(length_bytes[0]) << 8 | static_cast<unsigned char>(length_bytes[1]);
  std::string reply(length, '\0');
  BULWARK_TRY(read_exactly(tcp.fd, reply.data(), length));
  return reply;
}

Result<std::string> UpdateClient::find_zone(const std::string& fqdn) {
  std::uint16_t id = random_id();
  auto query = encode_soa_query(fqdn, id);
  if (!query) return query.error();
  auto wire = exchange(*query, id);
  if (!wire) return wire.error();
  auto answer = parse_message(*wire);
  if (!answer) return answer.error();
  if (answer->rcode() != 0 && answer->rcode() != 3) {
    const std::string rcode = answer->rcode() == 5 ? "REFUSED (it serves no zone holding that name)" : rcode_text(answer->rcode());
    return make_error(ErrorKind::not_found, "the DNS server " + server_ + " answered the SOA query for " + fqdn + " with " +
                                                rcode + "; check the name, or give the zone with --dns-zone");
  }
  for (const auto* section : {&answer->answers, &answer->authority})
    for (const auto& record : *section)
      if (record.type == kTypeSoa) return lower(record.name);
  return make_error(ErrorKind::not_found, "the DNS server " + server_ + " named no zone (SOA) holding " + fqdn +
                                              "; give the zone with --dns-zone");
}

Status UpdateClient::apply(const TxtUpdate& update) {
  std::uint16_t id = random_id();
  auto message = encode_txt_update(update, id);
  if (!message) return message.error();
  auto now = std::time(nullptr);
  auto signed_message = tsig_sign(*message, key_, static_cast<std::uint64_t>(now));
  if (!signed_message) return signed_message.error();
  auto wire = exchange(signed_message->wire, id);
  if (!wire) return wire.error();
  auto answer = parse_message(*wire);
  if (!answer) return answer.error();
  const std::string what = std::string(update.change == TxtChange::add ? "adding" : "removing") + " TXT " +
                           update.fqdn + " in zone " + update.zone + " at " + server_ + " with key " + key_.name;
  std::string tsig_problem;
  if (!answer->additional.empty() && answer->additional.back().type == kTypeTsig) {
    auto tsig = parse_tsig(*wire, answer->additional.back());
    if (tsig && tsig->error != 0) tsig_problem = ", " + tsig_error_text(tsig->error);
  }
  if (answer->rcode() != 0 || !tsig_problem.empty())
    return make_error(ErrorKind::unauthenticated, "the DNS server refused " + what + ": " + rcode_text(answer->rcode()) +
                                                      tsig_problem);
  if (auto verified = tsig_verify(*wire, key_, signed_message->mac, std::time(nullptr)); !verified)
    return make_error(ErrorKind::unauthenticated, "the answer to " + what + " is not trustworthy: " + verified.error().message);
  return Status::success();
}

}  // namespace bulwark::acme::dns
