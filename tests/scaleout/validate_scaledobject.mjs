// Validates KEDA ScaledObjects (JSON documents, one per argument) against KEDA's schema from
// @kubernetes-models/keda; prints one JSON line per document: {"ok": bool, "error": string}.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";

for (const arg of process.argv.slice(2)) {
  try {
    new ScaledObject(JSON.parse(arg)).validate();
    console.log(JSON.stringify({ ok: true, error: "" }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e.message) }));
  }
}
