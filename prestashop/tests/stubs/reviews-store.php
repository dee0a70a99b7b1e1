<?php
/** The store's stand-in: the copy in memory, with the same methods as RelanceReviewsStore. */
class MemoryReviewsStore
{
    /** @var array<int, array<int, array<string, mixed>>> */
    public $rows = [];
    /** @var array<int, array<string, mixed>> */
    public $states = [];

    public function state($idShop)
    {
        return isset($this->states[$idShop]) ? $this->states[$idShop] : ['etag' => '', 'synced_at' => 0, 'checked_at' => 0, 'last_error' => ''];
    }

    public function saveState($idShop, array $fields)
    {
        $this->states[$idShop] = $fields + $this->state($idShop);

        return true;
    }

    public function replace($idShop, array $rows, $etag, $now)
    {
        $this->rows[$idShop] = $rows;

        return $this->saveState($idShop, ['etag' => $etag, 'synced_at' => $now, 'checked_at' => $now, 'last_error' => '']);
    }

    public function distribution($idShop, $idProduct, $minRating)
    {
        $counts = [1 => 0, 2 => 0, 3 => 0, 4 => 0, 5 => 0];
        foreach ($this->shown($idShop, $idProduct, $minRating) as $row) {
            ++$counts[$row['rating']];
        }

        return $counts;
    }

    public function page($idShop, $idProduct, $minRating, $page, $perPage)
    {
        $rows = $this->shown($idShop, $idProduct, $minRating);
        usort($rows, function ($a, $b) {
            return strcmp($b['created_at'], $a['created_at']);
        });

        return array_slice($rows, ($page - 1) * $perPage, $perPage);
    }

    private function shown($idShop, $idProduct, $minRating)
    {
        return array_values(array_filter(isset($this->rows[$idShop]) ? $this->rows[$idShop] : [], function ($row) use ($idProduct, $minRating) {
            return $row['id_product'] === $idProduct && $row['rating'] >= $minRating;
        }));
    }
}
