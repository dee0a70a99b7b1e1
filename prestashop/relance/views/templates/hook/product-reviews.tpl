{**
 * Relance - the product's published reviews with the merchant's replies (displayFooterProduct).
 *
 * @license MIT
 *}
{if $relance_reviews.summary.count > 0}
<section id="relance-reviews" class="relance-reviews">
  <h2 class="h5 relance-reviews-title">{l s='Customer reviews' mod='relance'}</h2>
  <div class="relance-reviews-summary">
    <span class="relance-stars" role="img" aria-label="{$relance_reviews.summary.mean_text|escape:'html':'UTF-8'}/5"><span class="relance-stars-filled" style="width: {$relance_reviews.summary.percent|intval}%"></span></span>
    <span class="relance-reviews-mean">{$relance_reviews.summary.mean_text|escape:'html':'UTF-8'}/5</span>
    <span class="relance-reviews-count">{if $relance_reviews.summary.count == 1}{l s='1 review' mod='relance'}{else}{$relance_reviews.summary.count|intval} {l s='reviews' mod='relance'}{/if}</span>
  </div>
  <ol class="relance-reviews-list">
  {foreach from=$relance_reviews.reviews item=review}
    <li class="relance-review" id="relance-review-{$review.id|escape:'html':'UTF-8'}">
      <div class="relance-review-head">
        <span class="relance-stars" role="img" aria-label="{$review.rating|intval}/5"><span class="relance-stars-filled" style="width: {$review.percent|intval}%"></span></span>
        <strong class="relance-review-author">{$review.author|escape:'html':'UTF-8'}</strong>
        {if $review.date}<time class="relance-review-date" datetime="{$review.date_iso|escape:'html':'UTF-8'}">{$review.date|escape:'html':'UTF-8'}</time>{/if}
      </div>
      {if $review.comment}<p class="relance-review-comment">{$review.comment|escape:'html':'UTF-8'}</p>{/if}
      {if $review.reply}
      <blockquote class="relance-review-reply">
        <p class="relance-review-reply-title">{l s='Reply from the shop' mod='relance'}</p>
        <p>{$review.reply|escape:'html':'UTF-8'}</p>
      </blockquote>
      {/if}
    </li>
  {/foreach}
  </ol>
  {if $relance_reviews.pages}
  <nav class="relance-reviews-pages" aria-label="{l s='Pages of reviews' mod='relance'}">
    <ul class="page-list">
    {foreach from=$relance_reviews.pages item=page}
      <li{if $page.current} class="current"{/if}>{if $page.current}<span aria-current="page">{$page.number|intval}</span>{else}<a href="{$page.url|escape:'html':'UTF-8'}" rel="nofollow">{$page.number|intval}</a>{/if}</li>
    {/foreach}
    </ul>
  </nav>
  {/if}
  {if $relance_reviews.json_ld}<script type="application/ld+json">{$relance_reviews.json_ld nofilter}</script>{/if}
</section>
{/if}
