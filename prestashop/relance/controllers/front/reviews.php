<?php
/**
 * Relance - the reviews webhook: Relance posts a signed review.published here (an outgoing
 * webhook endpoint registered in Relance), and the local copy of the reviews is refreshed at
 * once. Signed with Standard Webhooks; the secret is the module's "reviews webhook secret".
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceReviewsModuleFrontController extends ModuleFrontController
{
    /** @var bool */
    public $ajax = true;

    public function initContent()
    {
        /** @var Relance $module */
        $module = $this->module;
        header('Content-Type: application/json');
        header('Cache-Control: no-store');
        if (!isset($_SERVER['REQUEST_METHOD']) || $_SERVER['REQUEST_METHOD'] !== 'POST') {
            http_response_code(405);
            header('Allow: POST');
            echo json_encode(['error' => 'POST only']);
            exit;
        }
        $body = (string) file_get_contents('php://input', false, null, 0, 1048576);
        $headers = [];
        foreach (['id', 'timestamp', 'signature'] as $name) {
            $key = 'HTTP_WEBHOOK_' . strtoupper($name);
            if (isset($_SERVER[$key])) {
                $headers['webhook-' . $name] = (string) $_SERVER[$key];
            }
        }
        $idShop = (int) $this->context->shop->id;
        $event = RelanceReviewsSync::verifyWebhook($module->reviewsSecret($idShop), $headers, $body, time());
        if ($event === null) {
            http_response_code(401);
            echo json_encode(['error' => 'invalid signature']);
            exit;
        }
        echo json_encode(['status' => 'ok']);
        if (strpos($event['type'], 'review.') === 0) {
            // Answered first, refreshed after, where PHP-FPM allows it.
            if (function_exists('fastcgi_finish_request')) {
                fastcgi_finish_request();
            }
            @set_time_limit(120);
            $module->refreshReviews($idShop);
        }
        exit;
    }
}
