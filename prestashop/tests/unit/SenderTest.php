<?php
use PHPUnit\Framework\TestCase;

class SenderTest extends TestCase
{
    public function testClassification()
    {
        foreach ([200 => 'sent', 202 => 'sent', 401 => 'retry_auth', 404 => 'stop', 410 => 'stop', 413 => 'stop',
            422 => 'stop', 0 => 'retry', 400 => 'retry', 429 => 'retry', 500 => 'retry', 503 => 'retry', 302 => 'retry', ] as $status => $outcome) {
            $this->assertSame($outcome, RelanceSender::classify($status), "HTTP $status");
        }
    }

    public function testBackOffDoublesUpToSixHoursAndHonoursRetryAfter()
    {
        $this->assertSame([60, 120, 240, 480], array_map(['RelanceSender', 'delay'], [1, 2, 3, 4]));
        $this->assertSame(21600, RelanceSender::delay(10));
        $this->assertSame(21600, RelanceSender::delay(500));
        $this->assertSame(900, RelanceSender::delay(1, 900));
        $this->assertSame(21600, RelanceSender::delay(1, 999999));
    }

    public function testEachAttemptIsSignedAnewWithTheSameId()
    {
        $seen = [];
        $transport = function ($url, $headers, $body, $timeout) use (&$seen) {
            $seen[] = [$url, $headers, $body, $timeout];

            return ['status' => count($seen) === 1 ? 503 : 202, 'body' => '{}', 'retry_after' => 0];
        };
        $signer = new RelanceSigner(SignerTest::SECRET);
        $sender = new RelanceSender($signer, $transport);
        $url = RelanceSender::endpoint('https://reviews.example/ ', 'shp_abc');
        $first = $sender->send($url, 'msg_same', '{"type":"ping"}', 1700000000);
        $second = $sender->send($url, 'msg_same', '{"type":"ping"}', 1700000900, 3);
        $this->assertSame(['retry', 'sent'], [$first['outcome'], $second['outcome']]);
        $this->assertSame('https://reviews.example/webhooks/prestashop/shp_abc', $seen[0][0]);
        $this->assertSame('msg_same', $seen[1][1]['webhook-id']);
        $this->assertSame(['1700000000', '1700000900'], [$seen[0][1]['webhook-timestamp'], $seen[1][1]['webhook-timestamp']]);
        $this->assertNotSame($seen[0][1]['webhook-signature'], $seen[1][1]['webhook-signature']);
        $this->assertTrue($signer->verify($seen[1][1], '{"type":"ping"}', 1700000900));
        $this->assertSame('application/json', $seen[0][1]['Content-Type']);
        $this->assertSame([5, 3], [$seen[0][3], $seen[1][3]]);
    }

    public function testOutboxDecisions()
    {
        $row = ['attempts' => 2];
        $this->assertSame(['action' => 'delete'], RelanceOutbox::afterAttempt($row, ['outcome' => 'sent', 'status' => 202], 1000));
        $retry = RelanceOutbox::afterAttempt($row, ['outcome' => 'retry', 'status' => 0, 'error' => 'Connection refused', 'body' => '', 'retry_after' => 0], 1000);
        $this->assertSame(['attempts' => 3, 'last_http_status' => 0, 'last_error' => 'Network error: Connection refused',
            'status' => 'pending', 'next_attempt_at' => 1240, ], $retry['fields']);
        $auth = RelanceOutbox::afterAttempt($row, ['outcome' => 'retry_auth', 'status' => 401, 'error' => '',
            'body' => '{"title":"Unauthorized","detail":"No valid v1 signature"}', 'retry_after' => 0, ], 1000);
        $this->assertSame('pending', $auth['fields']['status']);
        $this->assertStringContainsString('HTTP 401: No valid v1 signature (check the webhook secret and the server clock)', $auth['fields']['last_error']);
        $stop = RelanceOutbox::afterAttempt($row, ['outcome' => 'stop', 'status' => 422, 'error' => '', 'body' => '{"detail":"bad"}', 'retry_after' => 0], 1000);
        $this->assertSame('failed', $stop['fields']['status']);
        $this->assertArrayNotHasKey('next_attempt_at', $stop['fields']);
    }

    public function testCurlTransportReportsNetworkErrors()
    {
        $answer = RelanceSender::curlTransport('http://127.0.0.1:1/webhooks/prestashop/x', [], '{}', 1);
        $this->assertSame(0, $answer['status']);
        $this->assertNotSame('', $answer['error']);
    }

    public function testInstallSqlHasTheUniqueEventKey()
    {
        $sql = RelanceOutbox::installSql('ps_', 'InnoDB');
        $this->assertStringContainsString('CREATE TABLE IF NOT EXISTS `ps_relance_outbox`', $sql);
        $this->assertStringContainsString('UNIQUE KEY `relance_outbox_event` (`id_shop`, `event_key`)', $sql);
        $this->assertSame('DROP TABLE IF EXISTS `ps_relance_outbox`', RelanceOutbox::uninstallSql('ps_'));
    }
}
