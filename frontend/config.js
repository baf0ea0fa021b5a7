// Where the storefront finds the reviews API.
//
// Empty (the default) means "same origin": `reviews serve` serves the API next to this page
// (`frontend/dev/serve.sh --live` overwrites this file in its own copy of the page). When the page is hosted elsewhere (S3 + CloudFront), the deployment overwrites this
// file with the API's base URL, for example:
//
//   window.REVIEWS_API_BASE = "https://abc123.execute-api.eu-west-1.amazonaws.com";
//
// A trailing slash is fine. Only data is read from the API; no credentials are sent.
window.REVIEWS_API_BASE = window.REVIEWS_API_BASE || "";
