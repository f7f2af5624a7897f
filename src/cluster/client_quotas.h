// Client quotas as metadata (KIP-546): the controller's AlterClientQuotas decision (ClientQuotaRecords,
// validated as Kafka 3.7's ClientQuotaControlManager validates), DescribeClientQuotas over the image,
// and whether an alteration is visible in an image yet. Pure functions of the image, like controller.h.
#pragma once

#include "cluster/controller.h"
#include "cluster/image.h"
#include "wire/generated/alter_client_quotas.h"
#include "wire/generated/describe_client_quotas.h"

namespace bulwark::cluster {

// One ClientQuotaRecord per op of each valid entry (set, or remove when the key is set). Per entry,
// INVALID_REQUEST for an empty entity, an entity type given twice, an empty name, an ip combined
// with another type, an unknown key ("Invalid configuration key ...") or a byte rate that is not a
// whole number; UNSUPPORTED_VERSION for an entity type other than user, client-id and ip.
// validate_only answers and returns no records.
Decision<wire::msg::AlterClientQuotasResponse> alter_client_quotas(const MetadataImage& image,
                                                                   const wire::msg::AlterClientQuotasRequest& request);

// The entities that match every filter component (match type 0 = this name, 1 = the default,
// 2 = any entity of the type); strict: and no other entity types. INVALID_REQUEST for a component
// type given twice or an unknown match type.
wire::msg::DescribeClientQuotasResponse describe_client_quotas(const MetadataImage& image,
                                                               const wire::msg::DescribeClientQuotasRequest& request);

// Whether the image shows every op of the request's entries that `response` says succeeded.
bool image_has_client_quotas(const MetadataImage& image, const wire::msg::AlterClientQuotasRequest& request,
                             const wire::msg::AlterClientQuotasResponse& response);

}  // namespace bulwark::cluster
