<?php
/**
 * Relance - the local copy of the shop's published product reviews.
 *
 * One row per review and product (a review of an order rates each product of it); the order
 * rating alone is a review of the shop and is not kept. One row per shop in the state table:
 * the ETag of the last answer and when the copy was last refreshed or failed to be.
 * Product pages read only these tables: they never wait on Relance.
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

class RelanceReviewsStore
{
    const TABLE = 'relance_review';
    const STATE_TABLE = 'relance_review_state';

    /**
     * @param string $prefix _DB_PREFIX_
     * @param string $engine _MYSQL_ENGINE_
     *
     * @return array<int, string>
     */
    public static function installSql($prefix, $engine)
    {
        return [
            'CREATE TABLE IF NOT EXISTS `' . $prefix . self::TABLE . '` (
                `id_shop` INT UNSIGNED NOT NULL,
                `id_product` INT UNSIGNED NOT NULL,
                `review_id` VARCHAR(64) NOT NULL,
                `rating` TINYINT UNSIGNED NOT NULL,
                `comment` TEXT NOT NULL,
                `author` VARCHAR(128) NOT NULL DEFAULT \'\',
                `created_at` DATETIME NOT NULL,
                `reply` TEXT NOT NULL,
                PRIMARY KEY (`id_shop`, `id_product`, `review_id`),
                KEY `relance_review_product` (`id_shop`, `id_product`, `rating`, `created_at`)
            ) ENGINE=' . $engine . ' DEFAULT CHARSET=utf8mb4',
            'CREATE TABLE IF NOT EXISTS `' . $prefix . self::STATE_TABLE . '` (
                `id_shop` INT UNSIGNED NOT NULL,
                `etag` VARCHAR(255) NOT NULL DEFAULT \'\',
                `synced_at` INT UNSIGNED NOT NULL DEFAULT 0,
                `checked_at` INT UNSIGNED NOT NULL DEFAULT 0,
                `last_error` VARCHAR(255) NOT NULL DEFAULT \'\',
                PRIMARY KEY (`id_shop`)
            ) ENGINE=' . $engine . ' DEFAULT CHARSET=utf8mb4',
        ];
    }

    /**
     * @param string $prefix
     *
     * @return array<int, string>
     */
    public static function uninstallSql($prefix)
    {
        return [
            'DROP TABLE IF EXISTS `' . $prefix . self::TABLE . '`',
            'DROP TABLE IF EXISTS `' . $prefix . self::STATE_TABLE . '`',
        ];
    }

    /**
     * @param array<int, string> $statements
     *
     * @return bool
     */
    public static function executeAll(array $statements)
    {
        foreach ($statements as $sql) {
            if (!Db::getInstance()->execute($sql)) {
                return false;
            }
        }

        return true;
    }

    /**
     * @param int $idShop
     *
     * @return array<string, mixed> etag, synced_at, checked_at, last_error
     */
    public function state($idShop)
    {
        $row = Db::getInstance()->getRow(
            'SELECT `etag`, `synced_at`, `checked_at`, `last_error` FROM `' . _DB_PREFIX_ . self::STATE_TABLE . '`
            WHERE `id_shop` = ' . (int) $idShop
        );

        return is_array($row) ? $row : ['etag' => '', 'synced_at' => 0, 'checked_at' => 0, 'last_error' => ''];
    }

    /**
     * Replaces the shop's copy with these rows (see RelanceReviewsSync::rows).
     *
     * @param int $idShop
     * @param array<int, array<string, mixed>> $rows
     * @param string $etag
     * @param int $now
     *
     * @return bool
     */
    public function replace($idShop, array $rows, $etag, $now)
    {
        $db = Db::getInstance();
        $table = _DB_PREFIX_ . self::TABLE;
        $values = [];
        // Stored as Relance sent them (pSQL's $htmlOK: no tag stripping); the templates escape.
        foreach ($rows as $row) {
            $values[] = '(' . (int) $idShop . ', ' . (int) $row['id_product'] . ', \'' . pSQL($row['review_id']) . '\', '
                . (int) $row['rating'] . ', \'' . pSQL($row['comment'], true) . '\', \'' . pSQL($row['author'], true) . '\', \''
                . pSQL($row['created_at']) . '\', \'' . pSQL($row['reply'], true) . '\')';
        }
        // One transaction: a product page reads the old copy or the new one, never half of it.
        $ok = $db->execute('START TRANSACTION')
            && $db->execute('DELETE FROM `' . $table . '` WHERE `id_shop` = ' . (int) $idShop);
        foreach (array_chunk($values, 200) as $chunk) {
            $ok = $ok && $db->execute('INSERT IGNORE INTO `' . $table . '` (`id_shop`, `id_product`, `review_id`, `rating`, `comment`, `author`, `created_at`, `reply`) VALUES ' . implode(', ', $chunk));
        }
        $ok = $ok && $db->execute('COMMIT');
        if (!$ok) {
            $db->execute('ROLLBACK');
            $this->saveState($idShop, ['checked_at' => (int) $now, 'last_error' => 'The local copy could not be written.']);

            return false;
        }

        return $this->saveState($idShop, ['etag' => (string) $etag, 'synced_at' => (int) $now, 'checked_at' => (int) $now, 'last_error' => '']);
    }

    /**
     * @param int $idShop
     * @param array<string, mixed> $fields
     *
     * @return bool
     */
    public function saveState($idShop, array $fields)
    {
        $state = $fields + $this->state($idShop);

        return Db::getInstance()->execute(
            'REPLACE INTO `' . _DB_PREFIX_ . self::STATE_TABLE . '` (`id_shop`, `etag`, `synced_at`, `checked_at`, `last_error`)
            VALUES (' . (int) $idShop . ', \'' . pSQL((string) $state['etag']) . '\', ' . (int) $state['synced_at'] . ', '
            . (int) $state['checked_at'] . ', \'' . pSQL(substr((string) $state['last_error'], 0, 255)) . '\')'
        );
    }

    /**
     * Count, mean and distribution of the reviews shown (rating >= $minRating).
     *
     * @param int $idShop
     * @param int $idProduct
     * @param int $minRating
     *
     * @return array<int, int> rating => count, 1 to 5
     */
    public function distribution($idShop, $idProduct, $minRating)
    {
        $counts = [1 => 0, 2 => 0, 3 => 0, 4 => 0, 5 => 0];
        $rows = Db::getInstance()->executeS(
            'SELECT `rating`, COUNT(*) AS `n` FROM `' . _DB_PREFIX_ . self::TABLE . '`
            WHERE `id_shop` = ' . (int) $idShop . ' AND `id_product` = ' . (int) $idProduct . ' AND `rating` >= ' . (int) $minRating . '
            GROUP BY `rating`'
        );
        foreach (is_array($rows) ? $rows : [] as $row) {
            if (isset($counts[(int) $row['rating']])) {
                $counts[(int) $row['rating']] = (int) $row['n'];
            }
        }

        return $counts;
    }

    /**
     * One page of the reviews shown, newest first.
     *
     * @param int $idShop
     * @param int $idProduct
     * @param int $minRating
     * @param int $page 1-based
     * @param int $perPage
     *
     * @return array<int, array<string, mixed>>
     */
    public function page($idShop, $idProduct, $minRating, $page, $perPage)
    {
        $rows = Db::getInstance()->executeS(
            'SELECT `review_id`, `rating`, `comment`, `author`, `created_at`, `reply` FROM `' . _DB_PREFIX_ . self::TABLE . '`
            WHERE `id_shop` = ' . (int) $idShop . ' AND `id_product` = ' . (int) $idProduct . ' AND `rating` >= ' . (int) $minRating . '
            ORDER BY `created_at` DESC, `review_id` DESC
            LIMIT ' . max(0, ((int) $page - 1) * (int) $perPage) . ', ' . (int) $perPage
        );

        return is_array($rows) ? $rows : [];
    }
}
