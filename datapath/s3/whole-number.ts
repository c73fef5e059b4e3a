/** @module
 * How S3 reads a whole number in a request (a query parameter, a header, an XML element's text).
 */

/**
 * Decimal digits only, no sign, exponent, hex or fraction (`0x10`, `1e3`, `+1` are not 16,
 * 1000 and 1); NaN otherwise, which the caller refuses with its own error.
 */
export function wholeNumber(raw: string | null | undefined): number {
  return raw !== null && raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN
}
