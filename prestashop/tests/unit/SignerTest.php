<?php
use PHPUnit\Framework\TestCase;

class SignerTest extends TestCase
{
    const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

    public function testKnownVectorOfTheStandardWebhooksSpecification()
    {
        // The example of the Standard Webhooks specification (and of the svix libraries).
        $signer = new RelanceSigner(self::SECRET);
        $this->assertSame(
            'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
            $signer->sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')
        );
    }

    public function testHeadersAndVerify()
    {
        $signer = new RelanceSigner(self::SECRET);
        $headers = $signer->headers('msg_1', 1700000000, '{"type":"ping"}');
        $this->assertSame(['webhook-id', 'webhook-timestamp', 'webhook-signature'], array_keys($headers));
        $this->assertSame('1700000000', $headers['webhook-timestamp']);
        $this->assertTrue($signer->verify($headers, '{"type":"ping"}', 1700000299));
        $this->assertFalse($signer->verify($headers, '{"type":"ping"}', 1700000301), 'outside the tolerance');
        $this->assertFalse($signer->verify($headers, '{"type":"pong"}', 1700000000), 'another body');
        $other = new RelanceSigner('whsec_' . base64_encode(str_repeat('k', 32)));
        $this->assertFalse($other->verify($headers, '{"type":"ping"}', 1700000000), 'another secret');
        $svix = ['Svix-Id' => 'msg_1', 'Svix-Timestamp' => '1700000000',
            'Svix-Signature' => 'v1,bogus ' . $headers['webhook-signature'], ];
        $this->assertTrue($signer->verify($svix, '{"type":"ping"}', 1700000000), 'svix- spellings, several candidates');
    }

    public function testSecretValidation()
    {
        $this->assertTrue(RelanceSigner::isValidSecret(self::SECRET));
        $this->assertFalse(RelanceSigner::isValidSecret('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), 'whsec_ prefix required in the settings');
        $this->assertFalse(RelanceSigner::isValidSecret('whsec_not base64!'));
        $this->assertFalse(RelanceSigner::isValidSecret('whsec_'));
        $this->expectException(InvalidArgumentException::class);
        new RelanceSigner('whsec_%%%');
    }

    public function testMessageIdsAreUnique()
    {
        $ids = [];
        for ($i = 0; $i < 100; ++$i) {
            $ids[RelanceSigner::newMessageId()] = true;
        }
        $this->assertCount(100, $ids);
        $this->assertMatchesRegularExpression('/^msg_[0-9a-f]{32}$/', key($ids));
    }
}
