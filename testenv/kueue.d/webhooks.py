"""Kueue's webhook configurations, pointed at a Kueue process on 127.0.0.1.

Reads the List `kubectl create --dry-run=client -o json` made of the module's
config/components/webhook/manifests.yaml (stdin) and prints it back with:
  * only the webhooks of Kueue's own kinds and of the integrations testenv/kueue
    enables (batch/v1 Job, plain Pods): the others' handlers are not served;
  * clientConfig.url https://127.0.0.1:PORT<path> and the CA that signed the serving
    certificate, instead of an in-cluster Service;
  * every webhook limited to namespaces labelled SELECTOR (key=value): pods and Jobs
    elsewhere on the cluster never wait on this process (cluster-scoped objects, such
    as ClusterQueues, are not filtered by a namespaceSelector).

Usage: python3 webhooks.py PORT CA_FILE SELECTOR < list.json > webhooks.json
"""

import base64
import json
import sys

KEEP = ("kueue-x-k8s-io", "-batch-v1-job", "--v1-pod")


def main() -> None:
    port, ca_file, selector = sys.argv[1], sys.argv[2], sys.argv[3]
    key, _, value = selector.partition("=")
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    # kubectl prints one JSON document per object, one after the other.
    text, items, at = sys.stdin.read(), [], 0
    decoder = json.JSONDecoder()
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        doc, at = decoder.raw_decode(text, at)
        items += doc["items"] if doc.get("kind") == "List" else [doc]
    for item in items:
        kept = []
        for hook in item.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            if not any(k in path for k in KEEP):
                continue
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
            hook["namespaceSelector"] = {"matchLabels": {key: value}}
            hook["timeoutSeconds"] = 10
            kept.append(hook)
        item["webhooks"] = kept
        item["metadata"] = {
            "name": "computectl-testenv-kueue-" + item["metadata"]["name"],
            "labels": {"computectl.io/testenv": "kueue"},
        }
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


main()
