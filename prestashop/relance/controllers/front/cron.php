<?php
/**
 * Relance - the cron URL: sends what is due in the outbox and refreshes the local copy of the
 * reviews (a 304 when nothing changed). Protected by a token.
 *
 * Called every five minutes by the merchant's crontab (see the README).
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceCronModuleFrontController extends ModuleFrontController
{
    /** @var bool */
    public $ajax = true;

    public function initContent()
    {
        /** @var Relance $module */
        $module = $this->module;
        header('Content-Type: application/json');
        header('Cache-Control: no-store');
        if (!$module->isCronToken(Tools::getValue('token'))) {
            http_response_code(403);
            echo json_encode(['error' => 'invalid token']);
            exit;
        }
        @set_time_limit(120);
        $counts = $module->processOutbox(200);
        $counts['reviews'] = $module->refreshAllReviews();
        echo json_encode($counts);
        exit;
    }
}
