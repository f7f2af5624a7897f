// libFuzzer target for the CSRs `bulwark pki issue --csr` signs (PEM or DER): parsing, signature check,
// and what the PKI then reads from it (SANs, subject).
#include <cstddef>
#include <cstdint>
#include <string>

#include "pki/crypto.h"
#include "pki/parse.h"

using namespace bulwark;
using namespace bulwark::pki;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string contents(reinterpret_cast<const char*>(data), size);
  auto csr = crypto::read_csr(contents, "fuzz.csr");
  if (csr.ok()) {
    SanList sans = crypto::csr_sans(csr->get());
    for (const auto& dns : sans.dns) (void)validate_dns_name(dns);
    for (const auto& ip : sans.ips) (void)normalize_ip(ip);
    const X509_NAME* subject = X509_REQ_get_subject_name(csr->get());
    (void)crypto::name_rfc2253(subject);
    (void)crypto::common_name(subject);
    (void)format_subject(crypto::name_fields(subject));
  }
  // The SAN reader also sees mutated extensions that a signature check would stop first.
  const unsigned char* p = data;
  X509ReqPtr unverified(d2i_X509_REQ(nullptr, &p, static_cast<long>(size)));
  if (unverified) (void)crypto::csr_sans(unverified.get());
  ERR_clear_error();
  return 0;
}
