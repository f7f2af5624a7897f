#!/bin/sh
# The Secrets deploy/kubernetes/bulwark.yaml mounts, made by `bulwark pki bootstrap`: a keystore per pod
# (CN = the pod name, SANs = its stable DNS name and the client Service), the truststore, their password,
# the cluster id, and a client keystore for admin-1. Prints YAML; keep the PKI directory safe (its CA key
# signs every certificate).
#   deploy/kubernetes/make-secrets.sh NAMESPACE [PKI_DIR] | kubectl apply -n NAMESPACE -f -
set -eu
namespace=${1:?usage: make-secrets.sh NAMESPACE [PKI_DIR]}
pki=${2:-./bulwark-k8s-pki}
domain="bulwark-headless.$namespace.svc.cluster.local"
set --
for i in 0 1 2; do set -- "$@" --broker "bulwark-$i=bulwark-$i.$domain,bulwark.$namespace.svc,bulwark.$namespace.svc.cluster.local"; done
bulwark pki bootstrap --dir "$pki" "$@" --client admin-1 --format pkcs12 >&2
export_dir="$pki/export"

secret() {  # name, then key=file pairs
  name=$1; shift
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\ndata:\n' "$name" "$namespace"
  for pair in "$@"; do
    printf '  %s: %s\n' "${pair%%=*}" "$(base64 -w0 < "${pair#*=}")"
  done
}

secret bulwark-tls \
  "bulwark-0.keystore.p12=$export_dir/bulwark-0/bulwark-0.keystore.p12" \
  "bulwark-1.keystore.p12=$export_dir/bulwark-1/bulwark-1.keystore.p12" \
  "bulwark-2.keystore.p12=$export_dir/bulwark-2/bulwark-2.keystore.p12" \
  "truststore.p12=$export_dir/bulwark-0/bulwark-0.truststore.p12"
secret bulwark-tls-password "password=$pki/bootstrap.password"
id_file=$(mktemp)
bulwark storage random-uuid | tr -d '\n' > "$id_file"
secret bulwark-cluster "cluster-id=$id_file"
rm -f "$id_file"
secret bulwark-admin-1 \
  "keystore.p12=$export_dir/admin-1/admin-1.keystore.p12" \
  "truststore.p12=$export_dir/admin-1/admin-1.truststore.p12" \
  "client.properties=$export_dir/admin-1/admin-1.client.properties"
