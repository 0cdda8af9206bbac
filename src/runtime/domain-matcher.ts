// V2Ray's domain matchers, shared by routing rules and DNS hosts/servers.

/** Whether a lower-case domain matches. */
export type DomainMatcher = (domain: string) => boolean

/**
 * A matcher for one V2Ray domain pattern: `full:`, `domain:` (the domain and its subdomains), `regexp:`,
 * `dotless:` (a name without dots containing the rest; V2Ray turns it into the regexp `^[^.]*X[^.]*$`),
 * `keyword:` or a bare word (a substring).
 */
export function domainMatcher(pattern: string): DomainMatcher {
  if (pattern.startsWith('full:')) {
    const full = pattern.slice(5).toLowerCase()
    return (domain) => domain === full
  }
  if (pattern.startsWith('domain:')) {
    const suffix = pattern.slice(7).toLowerCase()
    return (domain) => domain === suffix || domain.endsWith(`.${suffix}`)
  }
  if (pattern.startsWith('regexp:')) {
    const regexp = new RegExp(pattern.slice(7))
    return (domain) => regexp.test(domain)
  }
  if (pattern.startsWith('dotless:')) {
    const regexp = new RegExp(`^[^.]*${pattern.slice(8)}[^.]*$`)
    return (domain) => regexp.test(domain)
  }
  const keyword = pattern.startsWith('keyword:') ? pattern.slice(8).toLowerCase() : pattern.toLowerCase()
  return (domain) => domain.includes(keyword)
}
