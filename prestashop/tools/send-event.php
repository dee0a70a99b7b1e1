<?php
/**
 * Signs and posts one event file with the module's own signer and sender; prints the answer.
 *
 * php prestashop/tools/send-event.php --url URL --shop SHOP_ID --secret WHSEC [--id MSG_ID] EVENT.json
 *
 * Exit status: 0 when Relance answered 2xx, 1 otherwise, 2 on a usage error.
 */
// The module's classes refuse to load outside PrestaShop unless this is defined.
define('_PS_VERSION_', 'send-event');
require_once dirname(__DIR__) . '/relance/classes/RelanceSigner.php';
require_once dirname(__DIR__) . '/relance/classes/RelancePayloadBuilder.php';
require_once dirname(__DIR__) . '/relance/classes/RelanceSender.php';

$usage = "usage: php send-event.php --url URL --shop SHOP_ID --secret WHSEC [--id MSG_ID] EVENT.json\n";
$options = ['url' => '', 'shop' => '', 'secret' => '', 'id' => ''];
$file = '';
$args = array_slice($argv, 1);
while ($args) {
    $arg = array_shift($args);
    $name = substr($arg, 2);
    if (strpos($arg, '--') === 0 && array_key_exists($name, $options) && $args) {
        $options[$name] = array_shift($args);
    } elseif (strpos($arg, '--') !== 0 && $file === '') {
        $file = $arg;
    } else {
        fwrite(STDERR, $usage);
        exit(2);
    }
}
if ($options['url'] === '' || $options['shop'] === '' || $options['secret'] === '' || $file === '') {
    fwrite(STDERR, $usage);
    exit(2);
}
$text = $file === '-' ? stream_get_contents(STDIN) : @file_get_contents($file);
$event = is_string($text) ? json_decode($text, true) : null;
if (!is_array($event) || !isset($event['type'])) {
    fwrite(STDERR, "$file is not a JSON event object with a \"type\"\n");
    exit(2);
}
if (!isset($event['timestamp'])) {
    $event['timestamp'] = gmdate('Y-m-d\TH:i:s\Z');
}
try {
    $sender = new RelanceSender(new RelanceSigner($options['secret']));
} catch (InvalidArgumentException $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    exit(2);
}
$id = $options['id'] !== '' ? $options['id'] : RelanceSigner::newMessageId();
$endpoint = RelanceSender::endpoint($options['url'], $options['shop']);
$answer = $sender->send($endpoint, $id, RelancePayloadBuilder::encode($event), time(), 10);
echo 'POST ' . $endpoint . "\nwebhook-id: " . $id . "\n";
if ((int) $answer['status'] === 0) {
    echo 'network error: ' . $answer['error'] . "\n";
} else {
    echo 'HTTP ' . (int) $answer['status'] . "\n" . $answer['body'] . "\n";
}
if ($answer['outcome'] === RelanceSender::RETRY_AUTH) {
    echo "401: check the secret (whsec_...) and this machine's clock (tolerance 5 minutes)\n";
} elseif ($answer['outcome'] === RelanceSender::STOP) {
    echo "Relance refused this event; the module would not retry it\n";
}
exit($answer['outcome'] === RelanceSender::SENT ? 0 : 1);
