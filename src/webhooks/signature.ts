// Webhook signing lives with the SDK, whose receivers verify what the server signs.
export { SIGNATURE_HEADER, signWebhook, signWebhookWithEach, verifyWebhookSignature } from '../sdk/webhook-signature.js';
