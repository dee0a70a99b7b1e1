<?php
/**
 * Relance - the outbox: hooks write events here and return; the sender works through it.
 *
 * A row is deleted as soon as Relance answers 2xx. A row Relance refused for good (404, 410,
 * 413, 422) is kept with status "failed" so the configuration page can show it.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceOutbox
{
    const TABLE = 'relance_outbox';
    const PENDING = 'pending';
    const FAILED = 'failed';
    /** seconds a claimed row is left alone by other senders (cron and end-of-request) */
    const LEASE = 60;

    /**
     * @param string $prefix _DB_PREFIX_
     * @param string $engine _MYSQL_ENGINE_
     *
     * @return string
     */
    public static function installSql($prefix, $engine)
    {
        return 'CREATE TABLE IF NOT EXISTS `' . $prefix . self::TABLE . '` (
            `id_relance_outbox` INT UNSIGNED NOT NULL AUTO_INCREMENT,
            `id_shop` INT UNSIGNED NOT NULL,
            `event_key` VARCHAR(64) NOT NULL,
            `webhook_id` VARCHAR(64) NOT NULL,
            `event_type` VARCHAR(64) NOT NULL,
            `payload` MEDIUMTEXT NOT NULL,
            `status` VARCHAR(16) NOT NULL DEFAULT \'pending\',
            `attempts` INT UNSIGNED NOT NULL DEFAULT 0,
            `next_attempt_at` INT UNSIGNED NOT NULL DEFAULT 0,
            `last_http_status` SMALLINT UNSIGNED NOT NULL DEFAULT 0,
            `last_error` VARCHAR(255) NOT NULL DEFAULT \'\',
            `date_add` DATETIME NOT NULL,
            PRIMARY KEY (`id_relance_outbox`),
            UNIQUE KEY `relance_outbox_event` (`id_shop`, `event_key`),
            KEY `relance_outbox_due` (`status`, `next_attempt_at`)
        ) ENGINE=' . $engine . ' DEFAULT CHARSET=utf8mb4';
    }

    /**
     * @param string $prefix
     *
     * @return string
     */
    public static function uninstallSql($prefix)
    {
        return 'DROP TABLE IF EXISTS `' . $prefix . self::TABLE . '`';
    }

    /**
     * What to write after one attempt (pure: no database).
     *
     * @param array<string, mixed> $row the outbox row (attempts)
     * @param array<string, mixed> $answer RelanceSender::send()'s answer
     * @param int $now
     *
     * @return array<string, mixed> ['action' => 'delete'] or ['action' => 'update', 'fields' => [...]]
     */
    public static function afterAttempt(array $row, array $answer, $now)
    {
        if ($answer['outcome'] === RelanceSender::SENT) {
            return ['action' => 'delete'];
        }
        $attempts = (int) $row['attempts'] + 1;
        $error = self::describe($answer);
        $fields = [
            'attempts' => $attempts,
            'last_http_status' => (int) $answer['status'],
            'last_error' => substr($error, 0, 255),
        ];
        if ($answer['outcome'] === RelanceSender::STOP) {
            $fields['status'] = self::FAILED;
        } else {
            $fields['status'] = self::PENDING;
            $fields['next_attempt_at'] = (int) $now + RelanceSender::delay($attempts, (int) $answer['retry_after']);
        }

        return ['action' => 'update', 'fields' => $fields];
    }

    /**
     * A one-line description of a failed attempt, for the configuration page and the logs.
     *
     * @param array<string, mixed> $answer
     *
     * @return string
     */
    public static function describe(array $answer)
    {
        $status = (int) $answer['status'];
        if ($status === 0) {
            return 'Network error: ' . (string) $answer['error'];
        }
        $detail = '';
        $decoded = json_decode((string) $answer['body'], true);
        if (is_array($decoded)) {
            $detail = isset($decoded['detail']) ? (string) $decoded['detail'] : (isset($decoded['title']) ? (string) $decoded['title'] : '');
        }
        $text = 'HTTP ' . $status . ($detail !== '' ? ': ' . $detail : '');
        if ($status === 401) {
            $text .= ' (check the webhook secret and the server clock)';
        }

        return $text;
    }

    /**
     * Adds an event; an event already in the outbox (same shop and key) is left as it is.
     *
     * @param int $idShop
     * @param string $eventKey unique per shop, e.g. "order_history:5531"
     * @param string $type
     * @param string $payload JSON
     * @param int $now
     *
     * @return bool
     */
    public static function enqueue($idShop, $eventKey, $type, $payload, $now)
    {
        return Db::getInstance()->execute(
            'INSERT IGNORE INTO `' . _DB_PREFIX_ . self::TABLE . '`
            (`id_shop`, `event_key`, `webhook_id`, `event_type`, `payload`, `status`, `attempts`, `next_attempt_at`, `date_add`)
            VALUES (' . (int) $idShop . ', \'' . pSQL($eventKey) . '\', \'' . pSQL(RelanceSigner::newMessageId()) . '\', \''
            . pSQL($type) . '\', \'' . pSQL($payload, true) . '\', \'' . self::PENDING . '\', 0, ' . (int) $now . ', \''
            . pSQL(date('Y-m-d H:i:s', (int) $now)) . '\')'
        );
    }

    /**
     * Replaces the body of an event not sent yet (a return whose lines were added after it).
     *
     * @param int $idShop
     * @param string $eventKey
     * @param string $payload
     *
     * @return bool
     */
    public static function replacePayload($idShop, $eventKey, $payload)
    {
        return Db::getInstance()->execute(
            'UPDATE `' . _DB_PREFIX_ . self::TABLE . '` SET `payload` = \'' . pSQL($payload, true) . '\'
            WHERE `id_shop` = ' . (int) $idShop . ' AND `event_key` = \'' . pSQL($eventKey) . '\'
            AND `status` = \'' . self::PENDING . '\' AND `attempts` = 0'
        );
    }

    /**
     * Rows due now, oldest first.
     *
     * @param int $now
     * @param int $limit
     * @param array<int, string> $eventKeys only these keys (end-of-request sending), all when empty
     *
     * @return array<int, array<string, mixed>>
     */
    public static function due($now, $limit, array $eventKeys = [])
    {
        $keys = '';
        if ($eventKeys) {
            $keys = ' AND `event_key` IN (\'' . implode('\', \'', array_map('pSQL', $eventKeys)) . '\')';
        }
        $rows = Db::getInstance()->executeS(
            'SELECT * FROM `' . _DB_PREFIX_ . self::TABLE . '`
            WHERE `status` = \'' . self::PENDING . '\' AND `next_attempt_at` <= ' . (int) $now . $keys . '
            ORDER BY `id_relance_outbox` ASC LIMIT ' . max(1, (int) $limit)
        );

        return is_array($rows) ? $rows : [];
    }

    /**
     * Takes a row for one attempt; false when another sender has it.
     *
     * @param int $id
     * @param int $now
     *
     * @return bool
     */
    public static function claim($id, $now)
    {
        $db = Db::getInstance();
        $db->execute(
            'UPDATE `' . _DB_PREFIX_ . self::TABLE . '` SET `next_attempt_at` = ' . ((int) $now + self::LEASE) . '
            WHERE `id_relance_outbox` = ' . (int) $id . ' AND `status` = \'' . self::PENDING . '\'
            AND `next_attempt_at` <= ' . (int) $now
        );

        return (int) $db->Affected_Rows() === 1;
    }

    /**
     * Applies afterAttempt()'s decision.
     *
     * @param int $id
     * @param array<string, mixed> $decision
     *
     * @return bool
     */
    public static function apply($id, array $decision)
    {
        $db = Db::getInstance();
        if ($decision['action'] === 'delete') {
            return $db->delete(self::TABLE, '`id_relance_outbox` = ' . (int) $id);
        }
        $fields = [];
        foreach ($decision['fields'] as $name => $value) {
            $fields[$name] = is_int($value) ? $value : pSQL((string) $value);
        }

        return $db->update(self::TABLE, $fields, '`id_relance_outbox` = ' . (int) $id);
    }

    /**
     * @param int $idShop
     *
     * @return array<string, int> pending and failed counts
     */
    public static function counts($idShop)
    {
        $rows = Db::getInstance()->executeS(
            'SELECT `status`, COUNT(*) AS n FROM `' . _DB_PREFIX_ . self::TABLE . '`
            WHERE `id_shop` = ' . (int) $idShop . ' GROUP BY `status`'
        );
        $counts = [self::PENDING => 0, self::FAILED => 0];
        foreach (is_array($rows) ? $rows : [] as $row) {
            $counts[$row['status']] = (int) $row['n'];
        }

        return $counts;
    }

    /**
     * The latest events Relance refused for good.
     *
     * @param int $idShop
     * @param int $limit
     *
     * @return array<int, array<string, mixed>>
     */
    public static function failed($idShop, $limit = 10)
    {
        $rows = Db::getInstance()->executeS(
            'SELECT `id_relance_outbox`, `event_type`, `event_key`, `attempts`, `last_http_status`, `last_error`, `date_add`
            FROM `' . _DB_PREFIX_ . self::TABLE . '` WHERE `id_shop` = ' . (int) $idShop . '
            AND `status` = \'' . self::FAILED . '\' ORDER BY `id_relance_outbox` DESC LIMIT ' . (int) $limit
        );

        return is_array($rows) ? $rows : [];
    }

    /**
     * Puts the shop's failed events back in the queue (after the merchant fixed the set-up).
     *
     * @param int $idShop
     * @param int $now
     *
     * @return bool
     */
    public static function retryFailed($idShop, $now)
    {
        return Db::getInstance()->update(
            self::TABLE,
            ['status' => self::PENDING, 'attempts' => 0, 'next_attempt_at' => (int) $now],
            '`id_shop` = ' . (int) $idShop . ' AND `status` = \'' . self::FAILED . '\''
        );
    }

    /**
     * @param int $idShop
     *
     * @return bool
     */
    public static function deleteFailed($idShop)
    {
        return Db::getInstance()->delete(
            self::TABLE,
            '`id_shop` = ' . (int) $idShop . ' AND `status` = \'' . self::FAILED . '\''
        );
    }
}
