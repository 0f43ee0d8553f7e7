import { DomainError } from "@hvar/contract";
import { hopRefusal } from "./source-policy";

/**
 * Which webhook URLs a client may give: the worker POSTs signed events there from its own network,
 * so a webhook URL is an SSRF vector just like a CDN source. Checked when the job is submitted, so
 * the client learns at once (400 webhook_url_not_allowed) instead of never receiving events.
 *
 * - The CDN sources' address rules (source-policy.ts): https, a public host, the default port,
 *   no credentials; ALLOW_INSECURE_ORIGINS exempts exact origins in local development.
 * - Never this service itself nor one of its runners, even where an origin is exempt: a webhook
 *   must not reach the worker's or the runners' own APIs (npm start exempts the worker's origin for
 *   the demo's photos, and runners listen on plain http).
 *
 * Redirects are not followed at delivery (webhooks/deliver.ts): a 3xx is a failed attempt, so a
 * public receiver cannot bounce the worker to a private address.
 */
export interface WebhookUrlRules {
  /** Exact origins exempt from the https and public-address rules (ALLOW_INSECURE_ORIGINS). */
  insecure: readonly string[];
  /** Origins a webhook may never target: the worker's own and its runners'. */
  forbidden: readonly string[];
}

const refuse = (detail: string) =>
  new DomainError({
    kind: "invalid_input",
    code: "webhook_url_not_allowed",
    title: "The webhook URL is not allowed",
    detail: `${detail} Webhook URLs must be https on the default port, with a public host name.`,
  });

export function checkWebhookUrl(webhookUrl: string, rules: WebhookUrlRules): URL {
  if (!URL.canParse(webhookUrl)) throw refuse("The URL cannot be read.");
  const url = new URL(webhookUrl);
  const forbidden = rules.forbidden.flatMap((origin) => (URL.canParse(origin) ? [new URL(origin).origin] : []));
  if (forbidden.includes(url.origin)) throw refuse(`${url.origin} is this service or one of its runners.`);
  const refusal = hopRefusal(url, { allowed: [], insecure: rules.insecure });
  if (refusal) throw refuse(refusal.detail);
  return url;
}
