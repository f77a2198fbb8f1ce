/* records: the DNS records to publish for each domain, as zone-file lines and as JSON */
#include "records.h"

#include <string.h>

#include "policy.h"

/* RFC 1035 §3.3: a character-string holds at most 255 bytes. */
#define TXT_STRING_MAX 255

static bool domain_valid(const char *name)
{
	return name && name[0] != '*' && policy_mx_valid(name, strlen(name));
}

int records_sts_value(struct buf *out, const char *id)
{
	if (!id || !policy_id_valid(id))
		return -1;
	return buf_printf(out, "v=STSv1; id=%s", id);
}

int records_tlsrpt_value(struct buf *out, const char *const *rua, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	if (n == 0)
		return -1;
	buf_puts(out, "v=TLSRPTv1; rua=");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(out, ",");
		/* RFC 8460 §3: these separate or end URIs in the record. */
		for (const char *s = rua[i]; *s; s++) {
			if (*s == ',' || *s == '!' || *s == ';') {
				unsigned char c = (unsigned char)*s;
				char esc[3] = {'%', hex[c >> 4], hex[c & 0xf]};
				buf_append(out, esc, sizeof(esc));
			} else {
				buf_append(out, s, 1);
			}
		}
	}
	return out->failed ? -1 : 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.';
}

/* A host name of letters, digits, '-' and '.', not starting or ending with '.'. */
static bool host_valid(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!host_char(s[i]) || (s[i] == '.' && s[i + 1] == '.'))
			return false;
	return true;
}

static bool https_valid(const char *rest)
{
	size_t auth = strcspn(rest, "/?#");
	const char *colon = memchr(rest, ':', auth);
	size_t host_len = colon ? (size_t)(colon - rest) : auth;
	if (!host_valid(rest, host_len))
		return false;
	if (colon) {
		size_t port_len = auth - host_len - 1;
		if (port_len == 0 || port_len > 5 || strspn(colon + 1, "0123456789") < port_len)
			return false;
	}
	return true;
}

static bool mailto_valid(const char *rest)
{
	const char *at = strrchr(rest, '@');
	if (!at || at == rest)
		return false;
	const char *domain = at + 1;
	return host_valid(domain, strlen(domain));
}

bool records_rua_valid(const char *uri)
{
	if (!uri)
		return false;
	for (const char *s = uri; *s; s++) {
		unsigned char c = (unsigned char)*s;
		/* Also no '"' or '\\': neither is allowed in a URI, and both need escaping
		 * inside a quoted TXT string. */
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
			return false;
	}
	if (strncmp(uri, "mailto:", 7) == 0)
		return mailto_valid(uri + 7);
	if (strncmp(uri, "https://", 8) == 0)
		return https_valid(uri + 8);
	return false;
}

static bool domain_records_valid(const struct records_domain *r)
{
	if (!domain_valid(r->domain))
		return false;
	if (r->proxy && !domain_valid(r->proxy))
		return false;
	if (r->id && !policy_id_valid(r->id))
		return false;
	for (size_t i = 0; i < r->n_rua; i++)
		if (!records_rua_valid(r->rua[i]))
			return false;
	return true;
}

static bool all_valid(const struct records_domain *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!domain_records_valid(&v[i]))
			return false;
	return true;
}

/* A TXT value as quoted character-strings of at most 255 bytes each; the value holds
 * no '"' or '\\' (checked by records_rua_valid and policy_id_valid). */
static void zone_txt(struct buf *out, const char *value, size_t len)
{
	if (!value)
		return; /* building the value ran out of memory; the caller marks out failed */
	size_t pos = 0;
	do {
		size_t n = len - pos < TXT_STRING_MAX ? len - pos : TXT_STRING_MAX;
		buf_puts(out, pos ? " \"" : "\"");
		buf_append(out, value + pos, n);
		buf_puts(out, "\"");
		pos += n;
	} while (pos < len);
}

static void zone_domain(struct buf *out, const struct records_domain *r,
                        const struct records_opts *o)
{
	struct buf value;
	buf_init(&value);
	if (r->proxy) {
		buf_printf(out, "_mta-sts.%s. %u IN CNAME _mta-sts.%s.\n", r->domain, o->sts_ttl,
		           r->proxy);
		if (r->id) {
			buf_puts(out, "; alternative to the CNAME: publish our own id instead (it "
			              "must then change whenever the provider's policy does)\n");
			records_sts_value(&value, r->id);
			buf_printf(out, "; _mta-sts.%s. %u IN TXT ", r->domain, o->sts_ttl);
			zone_txt(out, value.data, value.len);
			buf_puts(out, "\n");
		}
	} else if (r->id) {
		records_sts_value(&value, r->id);
		buf_printf(out, "_mta-sts.%s. %u IN TXT ", r->domain, o->sts_ttl);
		zone_txt(out, value.data, value.len);
		buf_puts(out, "\n");
	} else {
		buf_printf(out, "; %s: no policy yet\n", r->domain);
	}
	if (r->n_rua) {
		value.len = 0;
		records_tlsrpt_value(&value, r->rua, r->n_rua);
		buf_printf(out, "_smtp._tls.%s. %u IN TXT ", r->domain, o->tlsrpt_ttl);
		zone_txt(out, value.data, value.len);
		buf_puts(out, "\n");
	}
	if (value.failed)
		out->failed = true;
	buf_finish(&value);
}

int records_zone_lines(struct buf *out, const struct records_domain *d,
                       const struct records_opts *o)
{
	if (!domain_records_valid(d))
		return -1;
	zone_domain(out, d, o);
	return out->failed ? -1 : 0;
}

int records_zone(struct buf *out, const struct records_domain *v, size_t n,
                 const struct records_opts *o)
{
	if (!all_valid(v, n))
		return -1;
	buf_puts(out, "; mtastsd: DNS records to publish (RFC 8461 MTA-STS, RFC 8460 TLS-RPT)\n");
	for (size_t i = 0; i < n; i++)
		zone_domain(out, &v[i], o);
	return out->failed ? -1 : 0;
}

static void json_key(struct buf *out, const char *indent, const char *key)
{
	buf_puts(out, indent);
	buf_json_string(out, key, strlen(key));
	buf_puts(out, ": ");
}

static void json_string_or_null(struct buf *out, const char *s, size_t len)
{
	if (s)
		buf_json_string(out, s, len);
	else
		buf_puts(out, "null");
}

static void json_record(struct buf *out, bool *first, const char *name_fmt, const char *domain,
                        const char *type, unsigned ttl, const char *value, size_t value_len)
{
	buf_puts(out, *first ? "\n" : ",\n");
	*first = false;
	buf_puts(out, "      {\n");
	struct buf name;
	buf_init(&name);
	buf_printf(&name, "%s%s.", name_fmt, domain);
	json_key(out, "        ", "name");
	json_string_or_null(out, name.failed ? NULL : name.data, name.len);
	if (name.failed)
		out->failed = true;
	buf_finish(&name);
	buf_puts(out, ",\n");
	json_key(out, "        ", "type");
	buf_json_string(out, type, strlen(type));
	buf_puts(out, ",\n");
	json_key(out, "        ", "ttl");
	buf_printf(out, "%u,\n", ttl);
	json_key(out, "        ", "value");
	json_string_or_null(out, value, value_len);
	buf_puts(out, "\n      }");
}

static void json_records(struct buf *out, const struct records_domain *r,
                         const struct records_opts *o)
{
	struct buf value;
	buf_init(&value);
	bool first = true;
	buf_puts(out, "[");
	if (r->proxy) {
		buf_printf(&value, "_mta-sts.%s.", r->proxy);
		json_record(out, &first, "_mta-sts.", r->domain, "CNAME", o->sts_ttl, value.data,
		            value.len);
	} else if (r->id) {
		records_sts_value(&value, r->id);
		json_record(out, &first, "_mta-sts.", r->domain, "TXT", o->sts_ttl, value.data,
		            value.len);
	}
	if (r->n_rua) {
		value.len = 0;
		records_tlsrpt_value(&value, r->rua, r->n_rua);
		json_record(out, &first, "_smtp._tls.", r->domain, "TXT", o->tlsrpt_ttl, value.data,
		            value.len);
	}
	buf_puts(out, first ? "]" : "\n    ]");
	if (value.failed)
		out->failed = true;
	buf_finish(&value);
}

static void json_domain(struct buf *out, const struct records_domain *r,
                        const struct records_opts *o)
{
	const char *in = "    ";
	buf_puts(out, "  {\n");
	json_key(out, in, "domain");
	buf_json_string(out, r->domain, strlen(r->domain));
	buf_puts(out, ",\n");
	json_key(out, in, "mode");
	json_string_or_null(out, r->mode, r->mode ? strlen(r->mode) : 0);
	buf_puts(out, ",\n");
	json_key(out, in, "id");
	json_string_or_null(out, r->id, r->id ? strlen(r->id) : 0);
	buf_puts(out, ",\n");
	json_key(out, in, "policy");
	json_string_or_null(out, r->body, r->body_len);
	buf_puts(out, ",\n");
	json_key(out, in, "proxy");
	json_string_or_null(out, r->proxy, r->proxy ? strlen(r->proxy) : 0);
	buf_puts(out, ",\n");
	json_key(out, in, "records");
	json_records(out, r, o);
	buf_puts(out, "\n  }");
}

int records_json(struct buf *out, const struct records_domain *v, size_t n,
                 const struct records_opts *o)
{
	if (!all_valid(v, n))
		return -1;
	buf_puts(out, "[");
	for (size_t i = 0; i < n; i++) {
		buf_puts(out, i ? ",\n" : "\n");
		json_domain(out, &v[i], o);
	}
	buf_puts(out, n ? "\n]\n" : "]\n");
	return out->failed ? -1 : 0;
}
