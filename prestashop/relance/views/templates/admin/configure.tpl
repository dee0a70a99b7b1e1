{**
 * Relance - configuration page.
 *
 * @license MIT
 *}
<div class="relance-config">
{foreach from=$relance.notices item=notice}
  <div class="alert {if $notice.type == 'error'}alert-danger{else}alert-success{/if}">{$notice.text|escape:'html':'UTF-8'}</div>
{/foreach}
{if $relance.multistore_all}
  <div class="alert alert-info">{l s='Each shop has its own settings: choose a shop at the top of the page. The values below are the defaults for all shops.' mod='relance'}</div>
{/if}

<form method="post" action="{$relance.action|escape:'html':'UTF-8'}" class="defaultForm form-horizontal" id="relance-settings">
  <div class="panel">
    <div class="panel-heading"><i class="icon-cogs"></i> {l s='Connection to Relance' mod='relance'}</div>
    <div class="form-group">
      <label class="control-label col-lg-3 required" for="relance-url">{l s='Relance URL' mod='relance'}</label>
      <div class="col-lg-9">
        <input type="url" id="relance-url" name="RELANCE_URL" value="{$relance.url|escape:'html':'UTF-8'}" placeholder="https://reviews.example.com" required>
        <p class="help-block">{l s='The address of your Relance server, without a path.' mod='relance'}</p>
      </div>
    </div>
    <div class="form-group">
      <label class="control-label col-lg-3 required" for="relance-shop-id">{l s='Shop id' mod='relance'}</label>
      <div class="col-lg-9">
        <input type="text" id="relance-shop-id" name="RELANCE_SHOP_ID" value="{$relance.shop_id|escape:'html':'UTF-8'}" placeholder="shp_..." required>
      </div>
    </div>
    <div class="form-group">
      <label class="control-label col-lg-3{if !$relance.secret_set} required{/if}" for="relance-secret">{l s='Webhook secret' mod='relance'}</label>
      <div class="col-lg-9">
        <input type="password" id="relance-secret" name="RELANCE_SECRET" value="" autocomplete="off" placeholder="whsec_...">
        <p class="help-block">{if $relance.secret_set}{l s='A secret is saved. Leave empty to keep it.' mod='relance'}{else}{l s='The webhook_secret Relance gave for this shop.' mod='relance'}{/if}</p>
      </div>
    </div>
    <div class="form-group">
      <label class="control-label col-lg-3">{l s='Order states to send' mod='relance'}</label>
      <div class="col-lg-9">
        <div class="checkbox"><label><input type="checkbox" name="RELANCE_ALL_STATES" value="1"{if $relance.all_states} checked{/if}> {l s='All states (recommended)' mod='relance'}</label></div>
        {foreach from=$relance.states item=state}
        <div class="checkbox"><label><input type="checkbox" name="RELANCE_STATES[]" value="{$state.id|intval}"{if $state.checked} checked{/if}> {$state.name|escape:'html':'UTF-8'}</label></div>
        {/foreach}
      </div>
    </div>
    <div class="panel-footer">
      <button type="submit" name="submitRelanceConfig" value="1" class="btn btn-default pull-right"><i class="process-icon-save"></i> {l s='Save' mod='relance'}</button>
      <button type="submit" name="submitRelanceTest" value="1" class="btn btn-default" formnovalidate><i class="process-icon-refresh"></i> {l s='Test connection' mod='relance'}</button>
    </div>
  </div>
</form>

<form method="post" action="{$relance.action|escape:'html':'UTF-8'}" class="defaultForm form-horizontal" id="relance-reviews-settings">
  <div class="panel">
    <div class="panel-heading"><i class="icon-star"></i> {l s='Reviews on the shop' mod='relance'}</div>
    <p>{l s='The published reviews are copied to the shop by the cron line above, and at once when Relance sends review.published to the webhook below. Product pages read the copy only: they never wait on Relance.' mod='relance'}</p>
    <div class="form-group">
      <label class="control-label col-lg-3">{l s='Show' mod='relance'}</label>
      <div class="col-lg-9">
        <div class="checkbox"><label><input type="checkbox" name="RELANCE_REVIEWS_SHOW_STARS" value="1"{if $relance.reviews.show_stars} checked{/if}> {l s='Stars and count on the product page' mod='relance'}</label></div>
        <div class="checkbox"><label><input type="checkbox" name="RELANCE_REVIEWS_SHOW_LIST" value="1"{if $relance.reviews.show_list} checked{/if}> {l s='The reviews and your replies under the product' mod='relance'}</label></div>
        <div class="checkbox"><label><input type="checkbox" name="RELANCE_REVIEWS_SHOW_IN_LISTS" value="1"{if $relance.reviews.show_in_lists} checked{/if}> {l s='Stars in product lists' mod='relance'}</label></div>
      </div>
    </div>
    <div class="form-group">
      <label class="control-label col-lg-3" for="relance-min-rating">{l s='Minimum rating shown' mod='relance'}</label>
      <div class="col-lg-9">
        <select id="relance-min-rating" name="RELANCE_REVIEWS_MIN_RATING">
          <option value="1"{if $relance.reviews.min_rating == 1} selected{/if}>{l s='All reviews (recommended)' mod='relance'}</option>
          {foreach from=[2, 3, 4, 5] item=rating}
          <option value="{$rating|intval}"{if $relance.reviews.min_rating == $rating} selected{/if}>{$rating|intval}/5 {l s='and above' mod='relance'}</option>
          {/foreach}
        </select>
        <p class="help-block alert alert-warning" id="relance-min-rating-warning">{l s='In France, hiding bad reviews is unlawful: it misleads buyers (Code de la consommation). Keep "All reviews" for a shop that sells in France.' mod='relance'}</p>
      </div>
    </div>
    <div class="form-group">
      <label class="control-label col-lg-3" for="relance-reviews-secret">{l s='Reviews webhook secret' mod='relance'}</label>
      <div class="col-lg-9">
        <input type="password" id="relance-reviews-secret" name="RELANCE_REVIEWS_SECRET" value="" autocomplete="off" placeholder="whsec_...">
        <p class="help-block">{l s='In Relance, add an outgoing webhook endpoint for review.published with this URL, and paste its secret here:' mod='relance'} <code>{$relance.reviews.webhook_url|escape:'html':'UTF-8'}</code>{if $relance.reviews.secret_set} {l s='A secret is saved. Leave empty to keep it.' mod='relance'}{/if}</p>
      </div>
    </div>
    <div class="form-group">
      <label class="control-label col-lg-3">{l s='Last refresh' mod='relance'}</label>
      <div class="col-lg-9"><p class="form-control-static" id="relance-reviews-synced">{if $relance.reviews.synced_at}{$relance.reviews.synced_at|escape:'html':'UTF-8'}{else}{l s='Never' mod='relance'}{/if}{if $relance.reviews.last_error} - {$relance.reviews.last_error|escape:'html':'UTF-8'}{/if}</p></div>
    </div>
    <div class="panel-footer">
      <button type="submit" name="submitRelanceReviews" value="1" class="btn btn-default pull-right"><i class="process-icon-save"></i> {l s='Save' mod='relance'}</button>
      <button type="submit" name="submitRelanceReviewsRefresh" value="1" class="btn btn-default"><i class="process-icon-refresh"></i> {l s='Refresh the reviews now' mod='relance'}</button>
    </div>
  </div>
</form>

<div class="panel" id="relance-status">
  <div class="panel-heading"><i class="icon-info"></i> {l s='Status' mod='relance'}</div>
  <dl class="dl-horizontal">
    <dt>{l s='Last successful send' mod='relance'}</dt>
    <dd>{if $relance.last_success}{$relance.last_success|escape:'html':'UTF-8'}{else}{l s='Never' mod='relance'}{/if}</dd>
    <dt>{l s='Events waiting' mod='relance'}</dt>
    <dd id="relance-pending">{$relance.counts.pending|intval}</dd>
    <dt>{l s='Events refused' mod='relance'}</dt>
    <dd id="relance-failed">{$relance.counts.failed|intval}</dd>
    <dt>{l s='Last error' mod='relance'}</dt>
    <dd>{if $relance.last_error}{$relance.last_error.date|escape:'html':'UTF-8'} - {$relance.last_error.event|escape:'html':'UTF-8'}: {$relance.last_error.error|escape:'html':'UTF-8'}{else}{l s='None' mod='relance'}{/if}</dd>
    <dt>{l s='Last connection test' mod='relance'}</dt>
    <dd>{if $relance.last_test}{$relance.last_test.date|escape:'html':'UTF-8'} - {if $relance.last_test.ok}{l s='OK' mod='relance'}{else}{l s='Failed' mod='relance'}{/if}: {$relance.last_test.answer|escape:'html':'UTF-8'}{else}{l s='Never' mod='relance'}{/if}</dd>
  </dl>
  {if $relance.failed}
  <p>{l s='Relance refused these events for good (404: wrong URL or shop id; 413: too large; 422: invalid data). Fix the settings, then send them again.' mod='relance'}</p>
  <table class="table">
    <thead><tr><th>{l s='Event' mod='relance'}</th><th>{l s='Date' mod='relance'}</th><th>{l s='Error' mod='relance'}</th></tr></thead>
    <tbody>
    {foreach from=$relance.failed item=row}
      <tr><td>{$row.event_type|escape:'html':'UTF-8'} ({$row.event_key|escape:'html':'UTF-8'})</td><td>{$row.date_add|escape:'html':'UTF-8'}</td><td>{$row.last_error|escape:'html':'UTF-8'}</td></tr>
    {/foreach}
    </tbody>
  </table>
  <form method="post" action="{$relance.action|escape:'html':'UTF-8'}">
    <button type="submit" name="submitRelanceRetry" value="1" class="btn btn-default">{l s='Send again' mod='relance'}</button>
    <button type="submit" name="submitRelanceDiscard" value="1" class="btn btn-default">{l s='Delete' mod='relance'}</button>
  </form>
  {/if}
  <h4>{l s='Cron' mod='relance'}</h4>
  <p>{l s='Events are sent at once; those that fail are retried by this URL. Call it every 5 minutes from your crontab:' mod='relance'}</p>
  <pre id="relance-cron">*/5 * * * * curl -fsS '{$relance.cron_url|escape:'html':'UTF-8'}' &gt;/dev/null</pre>
</div>
</div>
